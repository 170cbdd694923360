// The install path on a real kernel: `pulumi up` with the real CLI takes a QEMU VM from its
// rescue system through kexec into the test installer, partitions /dev/vda with the
// tutorial's layout (vfat ESP included) and installs the system onto it.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startVm, type TestVm } from "../harness/vm";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { tutorialLayout } from "../fixtures/layouts";

let vm: TestVm;
let stack: TestStack;
let system: string;

before(async () => {
  system = await buildTestSystem({ label: "vm-v1" });
  vm = await startVm({ diskSizeMiB: 2048 });
  await vm.waitForSsh(120_000);
  stack = await createTestStack("vm-install", async () => {
    const layout = new DiskLayout("disk", tutorialLayout("/dev/vda") as never);
    const host = new NixosHost("vm", {
      connection: { host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey: vm.images.rescueHostKey },
      system: { storePath: system },
      diskLayout: layout,
      install: { phases: ["kexec", "disko", "install"], kexecTarball: vm.images.kexecTarball },
    });
    return { toplevel: host.toplevel, hostKey: host.hostKey };
  });
});

after(async (t) => {
  if (vm && process.exitCode) t.diagnostic(vm.consoleText().slice(-4000));
  await stack?.remove();
  await vm?.stop();
});

test("pulumi up kexecs the rescue VM into the installer, partitions /dev/vda per the layout and installs", async () => {
  const up = await stack.up();
  assert.equal(up.outputs["toplevel"]?.value, system, stack.output());
  assert.match(vm.consoleText(), /nixos-pulumi installer starting/, "the console shows the installer kernel starting");
  assert.match(vm.consoleText(), /kexec_core: Starting new kernel/);
  assert.equal(up.outputs["hostKey"]?.value, vm.images.installerHostKey, "the installer's own key was seen after kexec");
  for (const phase of ["kexec", "disko", "install"]) assert.match(stack.output(), new RegExp(`${phase}: done in`));

  const table = (await vm.ssh("sgdisk -p /dev/vda")).stdout;
  assert.match(table, /1\s+2048\s+4095\s+1024\.0 KiB\s+EF02\s+disk-main-MBR/);
  assert.match(table, /2\s+4096\s+\d+\s+500\.0 MiB\s+EF00\s+disk-main-ESP/);
  assert.match(table, /3\s+\d+\s+\d+\s+[\d.]+ GiB\s+8300\s+disk-main-root/);
  assert.equal((await vm.ssh("findmnt -no FSTYPE /mnt/boot")).stdout.trim(), "vfat");
  assert.equal((await vm.ssh("findmnt -no FSTYPE /mnt")).stdout.trim(), "ext4");
  assert.equal((await vm.ssh("readlink /mnt/nix/var/nix/profiles/system-1-link")).stdout.trim(), system);
  assert.equal((await vm.ssh(`nix-store --store /mnt --check-validity ${system} && echo valid`)).stdout.trim(), "valid");
});
