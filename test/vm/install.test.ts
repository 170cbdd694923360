// The whole install path on a real kernel, with the real CLI and the tutorial's layout:
// a QEMU VM goes from its rescue system through kexec into the test installer, /dev/vda is
// partitioned, the system installed, and the VM reboots from its disk into it. Then: a new
// system is switched without a reinstall, and a new layout's install (a reinstall) killed
// halfway is completed by the next `pulumi up`. (A completed reinstall after a layout change
// is install-luks.test.ts's second test.)
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startVm, type TestVm } from "../harness/vm";
import { buildTestSystem, layoutSystemOptions } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { generateKeyPair, type KeyPair } from "../harness/keys";
import { tutorialLayout } from "../fixtures/layouts";

let vm: TestVm;
let stack: TestStack;
let hostKey: KeyPair;
let clientPublicKey: string;
const systems: Record<string, string> = {};

function program(system: string, rootFormat = "ext4", espSize = "500M") {
  return async () => {
    const layout = new DiskLayout("disk", tutorialLayout("/dev/vda", rootFormat, "vfat", espSize) as never);
    const host = new NixosHost("vm", {
      connection: { host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey: hostKey.publicKey },
      system: { storePath: system },
      diskLayout: layout,
      install: {
        kexecTarball: vm.images.kexecTarball,
        hostKeys: { ed25519: { privateKey: hostKey.privateKey, publicKey: hostKey.publicKey } },
        extraFiles: { "/root/.ssh/authorized_keys": { content: clientPublicKey + "\n", mode: "0600" } },
        // The guest's port 22 is forwarded to a loopback port: the installer is reached there too.
        postKexecSshPort: vm.sshPort,
        timeouts: { kexecSeconds: 180, rebootSeconds: 180 },
      },
    });
    return { toplevel: host.toplevel, hostKey: host.hostKey, currentSystem: host.currentSystem };
  };
}

const installerStarts = () => (vm.consoleText().match(/nixos-pulumi installer starting/g) ?? []).length;

before(async () => {
  hostKey = await generateKeyPair("vm-installed-host");
  vm = await startVm({ diskSizeMiB: 2048 });
  clientPublicKey = (await import("node:fs")).readFileSync(`${vm.images.dir}/client_ed25519.pub`, "utf8").trim();
  const image = { kernelFile: vm.images.kernel, initrdFile: `${vm.images.dir}/stage1.cpio.gz`, vmRuntime: `${vm.images.dir}/runtime` };
  // The systems' own fileSystems, as the layout's NixOS module declares them (root, the ESP on /boot).
  const { fstab } = await layoutSystemOptions(tutorialLayout("/dev/vda", "ext4", "vfat"));
  for (const label of ["vm-v1", "vm-v2"]) systems[label] = await buildTestSystem({ label, ...image, fstab });
  await vm.waitForSsh(120_000);
  stack = await createTestStack("vm-install", program(systems["vm-v1"]!));
});

after(async (t) => {
  t.diagnostic(`console (tail):\n${vm?.consoleText().slice(-3000)}`);
  await stack?.remove();
  await vm?.stop();
});

test("pulumi up takes the VM from rescue mode to the installed system, booted from its disk", async (t) => {
  const started = Date.now();
  const up = await stack.up();
  t.diagnostic(`install phases: ${(stack.output().match(/(kexec|disko|install|reboot): done in [\d.]+s/g) ?? []).join(", ")}; whole up ${((Date.now() - started) / 1000).toFixed(0)}s`);
  const v1 = systems["vm-v1"]!;
  assert.equal(up.outputs["currentSystem"]?.value, v1, stack.output());
  assert.match(vm.consoleText(), /kexec_core: Starting new kernel/);
  assert.equal(installerStarts(), 1, "the console shows the installer kernel starting");
  assert.match(vm.consoleText(), /nixos-pulumi stage 2: .*vm-v1 up/, "the VM came back from its disk");
  assert.equal(up.outputs["hostKey"]?.value, hostKey.publicKey.split(" ").slice(0, 2).join(" "), "the pre-generated host key");
  for (const phase of ["kexec", "disko", "install", "reboot"]) assert.match(stack.output(), new RegExp(`${phase}: done in`));
  assert.doesNotMatch(stack.lastOutput(), /without a deploy lock/, "the rescue system and the installer both have flock");
  assert.match(stack.lastOutput(), /lock: holding the deploy lock on \S+ again after the boot/, "the lock was taken again in the installer after kexec");
  assert.equal((await vm.ssh("readlink /run/current-system")).stdout.trim(), v1);
  assert.match((await vm.ssh("grep ' /boot ' /proc/mounts")).stdout, /^\/dev\/vda\d+ \/boot vfat /, "the system mounted its ESP on /boot");
  assert.equal((await vm.ssh("cat /boot/default-system")).stdout.trim(), v1, "the bootloader entry on the ESP");
  const table = (await vm.ssh("sgdisk -p /dev/vda")).stdout;
  assert.match(table, /EF02\s+disk-main-MBR/);
  assert.match(table, /EF00\s+disk-main-ESP/);
  assert.match(table, /8300\s+disk-main-root/);
});

test("a changed system is switched without a reinstall; data on the root filesystem survives", async () => {
  await vm.ssh("echo kept > /root/data");
  stack.setProgram(program(systems["vm-v2"]!));
  const preview = await stack.preview();
  assert.equal(preview.changeSummary["update"], 1, stack.output());
  await stack.up();
  assert.doesNotMatch(stack.lastOutput(), /without a deploy lock/, "NixOS has flock: the switch holds the deploy lock");
  assert.equal((await vm.ssh("readlink /run/current-system")).stdout.trim(), systems["vm-v2"]);
  assert.equal((await vm.ssh("cat /boot/default-system")).stdout.trim(), systems["vm-v2"], "the switch updated the bootloader entry");
  assert.equal((await vm.ssh("cat /root/data")).stdout.trim(), "kept");
  assert.equal(installerStarts(), 1, "no kexec for a switch");
});

test("an install killed during the install phase is completed by the next up, without wiping again", async () => {
  stack.setProgram(program(systems["vm-v1"]!, "ext4", "400M"));
  const interrupted = stack.up();
  const deadline = Date.now() + 300_000;
  while (!/install: copying the closure into \/mnt/.test(stack.lastOutput()) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await vm.kill();
  await assert.rejects(interrupted);
  // The provider's console: power the machine on into rescue mode again.
  await vm.boot({ kernel: vm.images.kernel, initrd: vm.images.rescueInitrd, append: "console=ttyS0 panic=10" });
  await vm.waitForSsh(120_000);

  const up = await stack.up();
  assert.equal(up.outputs["currentSystem"]?.value, systems["vm-v1"], stack.output());
  assert.match(stack.output(), /disks already hold this layout/, "resumed on the formatted disks");
  assert.equal((await vm.ssh("readlink /run/current-system")).stdout.trim(), systems["vm-v1"]);
  assert.match((await vm.ssh("sgdisk -p /dev/vda")).stdout, /400\.0 MiB\s+EF00\s+disk-main-ESP/, "the new layout");
  assert.notEqual((await vm.ssh("test -e /root/data")).code, 0, "the old root filesystem is gone");
});
