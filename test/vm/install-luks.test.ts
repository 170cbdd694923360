// An install onto LUKS + LVM as a disko user's layout has it (ESP, LUKS, a volume group with
// root and home), through the real CLI: the VM kexecs into the installer, the layout is
// created, the system installed, and the machine reboots into it. Its initrd (the double of
// NixOS's stage 1) unlocks LUKS only with the key file the configuration puts into it
// (boot.initrd.secrets, appended by the bootloader at install time), activates LVM and
// mounts root from it. Then a changed volume size reinstalls the machine. The installer has no
// cryptsetup (as nixos-images' noninteractive one): the provider brings the system's own.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startVm, type TestVm } from "../harness/vm";
import { buildTestSystem, layoutSystemOptions } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { generateKeyPair, type KeyPair } from "../harness/keys";
import { luksLvmLayout } from "../fixtures/layouts";

let vm: TestVm;
let stack: TestStack;
let hostKey: KeyPair;
let clientPublicKey: string;
let system: string;
const KEY = `luks-key-${Date.now().toString(36)}-never-in-output`;
/** Where the layout's luks node reads its key (in the installer) and the initrd finds it. */
const KEY_FILE = "/tmp/disk.key";
/** Where the installed system keeps the key for the bootloader to append it to the initrd. */
const KEY_SOURCE = "/etc/secrets/disk.key";

const layout = (rootSize: string) => luksLvmLayout({ espSize: "96M", rootSize, keyFile: KEY_FILE, espMountOptions: ["umask=0077"] });

function program(rootSize: string) {
  return async () => {
    const disk = new DiskLayout("disk", layout(rootSize) as never);
    const host = new NixosHost("vm", {
      connection: { host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey: hostKey.publicKey },
      system: { storePath: system },
      diskLayout: disk,
      install: {
        kexecTarball: vm.images.kexecTarball,
        hostKeys: { ed25519: { privateKey: hostKey.privateKey, publicKey: hostKey.publicKey } },
        diskKeys: { [KEY_FILE]: KEY },
        extraFiles: {
          "/root/.ssh/authorized_keys": { content: clientPublicKey + "\n", mode: "0600" },
          [KEY_SOURCE]: { content: KEY, mode: "0600" },
        },
        postKexecSshPort: vm.sshPort,
        timeouts: { kexecSeconds: 180, rebootSeconds: 180 },
      },
    });
    return { currentSystem: host.currentSystem };
  };
}

const installerStarts = () => (vm.consoleText().match(/nixos-pulumi installer starting/g) ?? []).length;
/** The guest's sysfs directory of the device-mapper device `name`, as a shell expression. */
const dmSysfs = (name: string) => `$(for d in /sys/block/dm-*; do [ "$(cat $d/dm/name)" = ${name} ] && echo $d; done)`;
/** Size in MiB of a device-mapper device in the guest, read from sysfs. */
async function sizeMiB(name: string): Promise<number> {
  const r = await vm.ssh(`cat ${dmSysfs(name)}/size`);
  return Number(r.stdout.trim()) / 2048;
}

before(async () => {
  hostKey = await generateKeyPair("vm-luks-host");
  vm = await startVm({ diskSizeMiB: 1536 });
  clientPublicKey = (await import("node:fs")).readFileSync(`${vm.images.dir}/client_ed25519.pub`, "utf8").trim();
  // The system as a flake importing the layout's NixOS module has it (fileSystems,
  // boot.initrd.luks.devices), plus the key for its initrd: boot.initrd.secrets.
  const fromLayout = await layoutSystemOptions(layout("448M"));
  system = await buildTestSystem({
    label: "vm-luks",
    kernelFile: vm.images.kernel,
    initrdFile: vm.images.stage1Initrd,
    vmRuntime: vm.images.runtime,
    cryptsetup: vm.images.cryptsetup,
    ...fromLayout,
    initrdSecrets: `${KEY_FILE} ${KEY_SOURCE}\n`,
  });
  await vm.waitForSsh(120_000);
  stack = await createTestStack("vm-install-luks", program("448M"));
});

after(async (t) => {
  t.diagnostic(`console (tail):\n${vm?.consoleText().slice(-3000)}`);
  await stack?.remove();
  await vm?.stop();
});

test("pulumi up installs onto LUKS + LVM; the initrd unlocks LUKS with the key file and mounts root from LVM", async (t) => {
  const started = Date.now();
  const up = await stack.up();
  t.diagnostic(`install phases: ${(stack.lastOutput().match(/(kexec|disko|install|reboot): done in [\d.]+s/g) ?? []).join(", ")}; whole up ${((Date.now() - started) / 1000).toFixed(0)}s`);
  assert.equal(up.outputs["currentSystem"]?.value, system, stack.output());
  assert.match(stack.lastOutput(), /disko: the installer lacks cryptsetup; copying \/nix\/store\/[0-9a-z]{32}-cryptsetup from the system's closure/);
  assert.match(vm.consoleText(), /nixos-pulumi stage 1: mounting \/dev\/pool\/root on \/ \(ext4\)/, "stage 1 mounted root from LVM");
  assert.match(vm.consoleText(), /nixos-pulumi stage 2: .*vm-luks up/, "the VM came back from its disk");
  assert.doesNotMatch(vm.consoleText(), /Passphrase for/, "no passphrase was asked");
  assert.equal((await vm.ssh("readlink /run/current-system")).stdout.trim(), system);
  const mounts = (await vm.ssh("cat /proc/mounts")).stdout;
  assert.match(mounts, /^\/dev\/mapper\/pool-root \/ ext4 /m, mounts);
  assert.match(mounts, /^\/dev\/mapper\/pool-home \/home ext4 /m, mounts);
  assert.match(mounts, /^\/dev\/vda1 \/boot vfat /m, mounts);
  // The root LV sits on the LUKS mapping: its only slave is the dm device named "crypted".
  const slave = (await vm.ssh(`ls ${dmSysfs("pool-root")}/slaves`)).stdout.trim();
  assert.equal((await vm.ssh(`cat /sys/class/block/${slave}/dm/name`)).stdout.trim(), "crypted");
  assert.match((await vm.ssh(`cat /sys/class/block/${slave}/dm/uuid`)).stdout, /^CRYPT-LUKS2-/);
  assert.equal(Math.round(await sizeMiB("pool-root")), 448);
  assert.ok(!stack.output().includes(KEY), "the disk key is not in the engine's output");
});

test("a changed volume size reinstalls; the new layout boots from LUKS + LVM again", async () => {
  await vm.ssh("echo old > /home/data");
  stack.setProgram(program("512M"));
  const preview = await stack.preview();
  assert.equal(preview.changeSummary["replace"], 1, stack.output());
  const up = await stack.up();
  assert.equal(up.summary.resourceChanges?.["replace"], 1, stack.output());
  assert.equal(installerStarts(), 2, "kexec'd into the installer again");
  assert.equal((await vm.ssh("readlink /run/current-system")).stdout.trim(), system);
  assert.equal(Math.round(await sizeMiB("pool-root")), 512);
  assert.notEqual((await vm.ssh("test -e /home/data")).code, 0, "the old home filesystem is gone");
  assert.ok(!stack.output().includes(KEY), "the disk key is not in the engine's output");
});
