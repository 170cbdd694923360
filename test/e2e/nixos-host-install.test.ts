// NixosHost create with a DiskLayout, through the real Pulumi CLI, on a test host in the
// "installer" state with a loop disk (the kexec and reboot phases run in the QEMU tier):
// the layout is partitioned and the system installed; a changed system previews an update,
// a changed layout previews a replace.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { tutorialLayout } from "../fixtures/layouts";
import { generateKeyPair, type KeyPair } from "../harness/keys";

let host: TestHost;
let v1: string;
let v2: string;
let stack: TestStack;
let hostKey: KeyPair;
/** Binary content (NUL bytes, invalid UTF-8) for an extra file. */
const BLOB = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 0, 42]);

function program(system: string, rootFormat = "ext4") {
  return async () => {
    const layout = new DiskLayout("disk", tutorialLayout("/dev/vda", rootFormat, "ext4") as never);
    const h = new NixosHost("fresh", {
      connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { storePath: system },
      diskLayout: layout,
      install: {
        phases: ["disko", "install"],
        extraFiles: {
          "/etc/motd": { content: "installed by pulumi\n", mode: "0644" },
          "/var/lib/app/blob.bin": { content: BLOB.toString("base64"), encoding: "base64", mode: "0640", owner: 1000, group: 100 },
        },
        hostKeys: { ed25519: { privateKey: hostKey.privateKey, publicKey: hostKey.publicKey } },
      },
    });
    return { toplevel: h.toplevel, layoutHash: h.layoutHash };
  };
}

before(async () => {
  hostKey = await generateKeyPair("installed-host-key");
  [v1, v2] = await Promise.all([buildTestSystem({ label: "inst-v1" }), buildTestSystem({ label: "inst-v2" })]);
  host = await startHost({ name: "fresh", state: "installer", disks: [{ name: "vda", sizeMiB: 1024 }] });
  stack = await createTestStack("install", program(v1));
});

after(async () => {
  await host?.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
  await stack?.remove();
  await host?.stop();
});

test("up partitions the disk per the layout and installs the system under /mnt", async () => {
  const up = await stack.up();
  assert.equal(up.outputs["toplevel"]?.value, v1, stack.output());
  assert.match(stack.output(), /disko/);
  const table = await host.run("sgdisk -p /dev/vda");
  assert.match(table, /EF02\s+disk-main-MBR/);
  assert.match(table, /EF00\s+disk-main-ESP/);
  assert.match(table, /8300\s+disk-main-root/);
  assert.equal((await host.run("findmnt -no FSTYPE /mnt | tail -n 1")).trim(), "ext4");
  assert.equal((await host.run("findmnt -no FSTYPE /mnt/boot")).trim(), "ext4");
  assert.equal((await host.run("blkid -s PARTLABEL -o value /dev/vda3")).trim(), "disk-main-root");
  assert.equal((await host.run("cat /mnt/boot/default-system")).trim(), v1, "bootloader entry written by switch-to-configuration boot");
  assert.equal((await host.run("readlink -f /mnt/nix/var/nix/profiles/system")).trim(), v1);
  assert.equal(await host.run("cat /mnt/etc/motd; echo '|'; stat -c %a /mnt/etc/motd"), "installed by pulumi\n|\n644");
  assert.equal(await host.run("stat -c '%a %u %g' /mnt/var/lib/app/blob.bin"), "640 1000 100", "owner, group and mode as declared");
  assert.equal(await host.run("od -An -tx1 /mnt/var/lib/app/blob.bin | tr -s ' \n' ' '"), " 00 01 02 ff fe 80 0a 00 2a ", "binary content byte for byte");
  assert.equal(await host.run("stat -c %a /mnt"), "755", "/mnt traversable, as nixos-install requires");
  assert.equal(await host.run("stat -c %a /mnt/tmp"), "1777");
  assert.equal(await host.run("stat -c %a /mnt/etc/ssh/ssh_host_ed25519_key"), "600");
  assert.equal(await host.run("cat /mnt/etc/ssh/ssh_host_ed25519_key"), hostKey.privateKey.trimEnd());
  assert.equal(await host.run("cat /mnt/etc/ssh/ssh_host_ed25519_key.pub"), hostKey.publicKey);
  const keyBody = hostKey.privateKey.split("\n")[1]!;
  assert.ok(!stack.stateFile().includes(keyBody), "the pre-generated host key is not in the state in plain text");
  assert.ok(!stack.output().includes(keyBody), "nor in the engine output");
});

test("a changed system previews an update; a changed layout previews a replace", async () => {
  stack.setProgram(program(v2));
  let preview = await stack.preview();
  assert.equal(preview.changeSummary["update"], 1, stack.output());
  assert.equal(preview.changeSummary["replace"], undefined);

  stack.setProgram(program(v1, "xfs"));
  preview = await stack.preview();
  assert.equal(preview.changeSummary["replace"], 1, stack.output());
});
