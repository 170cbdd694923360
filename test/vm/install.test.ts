// The whole install path on a real kernel, with the real CLI and the tutorial's layout:
// a QEMU VM goes from its rescue system through kexec into the test installer, /dev/vda is
// partitioned, the system installed, and the VM reboots from its disk into it. The rescue
// system's ECDSA key is pinned and no install.hostKeys given: the installer (which serves
// no ECDSA key) is pinned to the rescue system's ed25519 key, and the installed system to
// the key the provider generated and wrote before its first boot. Then: a new system is
// switched without a reinstall (connection.hostKey still the rescue key), and a new
// layout's install (a reinstall) killed halfway is completed by the next `pulumi up`. (A
// completed reinstall after a layout change is install-luks.test.ts's second test, with a
// given install.hostKeys.)
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startVm, type TestVm } from "../harness/vm";
import { buildTestSystem, layoutSystemOptions } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { tutorialLayout } from "../fixtures/layouts";

let vm: TestVm;
let stack: TestStack;
let clientPublicKey: string;
const systems: Record<string, string> = {};

function program(system: string, rootFormat = "ext4", espSize = "500M", hostKey = vm.images.rescueEcdsaHostKey) {
  return async () => {
    const layout = new DiskLayout("disk", tutorialLayout("/dev/vda", rootFormat, "vfat", espSize) as never);
    const host = new NixosHost("vm", {
      connection: { host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey },
      system: { storePath: system },
      diskLayout: layout,
      install: {
        kexecTarball: vm.images.kexecTarball,
        extraFiles: { "/root/.ssh/authorized_keys": { content: clientPublicKey + "\n", mode: "0600" } },
        // The guest's port 22 is forwarded to a loopback port: the installer is reached there too.
        postKexecSshPort: vm.sshPort,
        timeouts: { kexecSeconds: 180, rebootSeconds: 180 },
      },
    });
    return { toplevel: host.toplevel, hostKey: host.hostKey, installedHostKey: host.installedHostKey, currentSystem: host.currentSystem };
  };
}

const installerStarts = () => (vm.consoleText().match(/nixos-pulumi installer starting/g) ?? []).length;

before(async () => {
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
  assert.match(vm.consoleText(), /nixos-pulumi nixos-installer: reboot requested \(SIGTERM to PID 1\)/, "the installer rebooted on `reboot`, not on the provider's `reboot -f` 30 s later");
  assert.match(vm.consoleText(), /nixos-pulumi stage 2: .*vm-v1 up/, "the VM came back from its disk");
  assert.match(stack.output(), /presented an ecdsa-sha2-nistp256 host key, which the NixOS installer's sshd does not serve .*\/etc\/ssh\/ssh_host_ed25519_key/);
  const installedKey = String(up.outputs["installedHostKey"]?.value);
  assert.match(installedKey, /^ssh-ed25519 /);
  assert.notEqual(installedKey, vm.images.rescueHostKey);
  assert.equal(up.outputs["hostKey"]?.value, installedKey, "the installed system presented the generated key (pinned at the reboot)");
  assert.equal((await vm.ssh("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).stdout.trim(), installedKey);
  const secretLines = (await vm.ssh("sed -n '3,$p' /etc/ssh/ssh_host_ed25519_key | grep -v '^-----'")).stdout.trim().split("\n");
  const exported = JSON.stringify(await stack.resources());
  for (const line of secretLines) assert.ok(line.length > 20 && !exported.includes(line) && !stack.output().includes(line), "the generated private key is in neither state nor output");
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
  // The machine runs the installed system: pin what it presents (the installedHostKey output).
  const installedKey = String((await stack.stack.outputs())["installedHostKey"]?.value);
  stack.setProgram(program(systems["vm-v1"]!, "ext4", "400M", installedKey));
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

  // In rescue mode again: its ECDSA key is pinned.
  stack.setProgram(program(systems["vm-v1"]!, "ext4", "400M"));
  const up = await stack.up();
  assert.equal(up.outputs["currentSystem"]?.value, systems["vm-v1"], stack.output());
  assert.match(stack.output(), /disks already hold this layout/, "resumed on the formatted disks");
  assert.equal((await vm.ssh("readlink /run/current-system")).stdout.trim(), systems["vm-v1"]);
  assert.match((await vm.ssh("sgdisk -p /dev/vda")).stdout, /400\.0 MiB\s+EF00\s+disk-main-ESP/, "the new layout");
  assert.notEqual((await vm.ssh("test -e /root/data")).code, 0, "the old root filesystem is gone");
  const reinstalledKey = String(up.outputs["installedHostKey"]?.value);
  assert.notEqual(reinstalledKey, installedKey, "a reinstall generates a new host key");
  assert.equal((await vm.ssh("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).stdout.trim(), reinstalledKey);
});
