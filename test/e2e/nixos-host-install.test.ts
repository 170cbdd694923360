// NixosHost create with a DiskLayout, through the real Pulumi CLI, on a test host in the
// "installer" state with a loop disk (the kexec and reboot phases run in the QEMU tier):
// the layout is partitioned and the system installed with a host key generated for it (no
// install.hostKeys), extra files keep owner and mode (setuid too), nothing of ours is left
// in the installed /etc; a changed system previews an update, a changed layout a replace.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { tutorialLayout } from "../fixtures/layouts";

let host: TestHost;
let v1: string;
let v2: string;
let stack: TestStack;
/** Binary content (NUL bytes, invalid UTF-8) for an extra file. */
const BLOB = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 0, 42]);

function program(system: string, rootFormat = "ext4", phases: string[] = ["disko", "install"]) {
  return async () => {
    const layout = new DiskLayout("disk", tutorialLayout("/dev/vda", rootFormat, "ext4") as never);
    const h = new NixosHost("fresh", {
      connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { storePath: system },
      diskLayout: layout,
      install: {
        phases: phases as never,
        extraFiles: {
          "/etc/motd": { content: "installed by pulumi\n", mode: "0644" },
          "/var/lib/app/blob.bin": { content: BLOB.toString("base64"), encoding: "base64", mode: "0640", owner: 1000, group: 100 },
          "/usr/local/bin/helper": { content: "#!/bin/sh\necho helper\n", mode: "6750", owner: 0, group: 100 },
        },
      },
    });
    return { toplevel: h.toplevel, layoutHash: h.layoutHash, installedHostKey: h.installedHostKey };
  };
}

/** `pulumi preview` as a user runs it (no --diff): the output that shows the hosts' lines. */
async function previewOutput(): Promise<string> {
  let shown = "";
  await stack.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  return shown;
}

before(async () => {
  [v1, v2] = await Promise.all([buildTestSystem({ label: "inst-v1" }), buildTestSystem({ label: "inst-v2" })]);
  host = await startHost({ name: "fresh", state: "installer", disks: [{ name: "vda", sizeMiB: 1024 }] });
  stack = await createTestStack("install", program(v1));
});

after(async () => {
  await host?.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
  await stack?.remove();
  await host?.stop();
});

test("the preview of the create says it installs: kexec, which disk it wipes with its partition sizes; said once, not again by the up", async () => {
  // The default phases (the up below runs without kexec and reboot: this host already runs the installer).
  stack.setProgram(program(v1, "ext4", ["kexec", "disko", "install", "reboot"]));
  let shown: string;
  try {
    shown = await previewOutput();
  } finally {
    stack.setProgram(program(v1));
  }
  const wipes = "wipes /dev/vda (GPT: MBR 1M, ESP 500M, root the rest of the disk)";
  const full = `fresh: install: kexec into the NixOS installer (skipped if the machine already runs it), then ${wipes}, then installs ${v1}, then reboots into it`;
  // Printed once by the provider: the engine's Diagnostics list each line it printed.
  const diagnostics = shown.slice(shown.indexOf("\nDiagnostics:"));
  assert.equal(diagnostics.split(full).length - 1, 1, shown);
  shown = await previewOutput();
  const phased = `fresh: install (phases disko, install): no kexec (install.phases: the machine must already run the NixOS installer), then ${wipes}, then installs ${v1}, then no reboot`;
  assert.ok(shown.includes(phased), shown);
});

test("up partitions the disk per the layout and installs the system under /mnt", async () => {
  const up = await stack.up();
  assert.doesNotMatch(stack.lastOutput(), /kexec into the NixOS installer|no kexec \(install\.phases/, "the up after a preview does not print the create's plan again");
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
  assert.equal(await host.run("stat -c '%a %u %g' /mnt/usr/local/bin/helper"), "6750 0 100", "setuid and setgid kept, as nixos-anywhere's tar -p");
  assert.notEqual((await host.exec("test -e /mnt/etc/nixos-pulumi")).code, 0, "the layout marker is not left in the installed /etc");

  // No install.hostKeys: a key generated for this install, where NixOS's sshd reads it, so
  // the first boot generates none; its public key is an output.
  assert.equal(await host.run("stat -c '%a %u %g' /mnt/etc/ssh /mnt/etc/ssh/ssh_host_ed25519_key /mnt/etc/ssh/ssh_host_ed25519_key.pub"), "755 0 0\n600 0 0\n644 0 0");
  const installedKey = String(up.outputs["installedHostKey"]?.value);
  assert.match(installedKey, /^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
  assert.notEqual(installedKey, host.hostPublicKey, "not the installer's key");
  assert.equal((await host.run("ssh-keygen -y -f /mnt/etc/ssh/ssh_host_ed25519_key")).trim().split(" ").slice(0, 2).join(" "), installedKey, "sshd loads the private key, and it matches the output");
  assert.equal((await host.run("cut -d' ' -f1,2 /mnt/etc/ssh/ssh_host_ed25519_key.pub")).trim(), installedKey);
  // Lines 3.. of the armoured key hold the private part (line 2 is mostly a constant header).
  const secretLines = (await host.run("sed -n '3,$p' /mnt/etc/ssh/ssh_host_ed25519_key | grep -v '^-----'")).trim().split("\n");
  assert.ok(secretLines.length >= 3 && secretLines.every((l) => l.length > 20), secretLines.join("\n"));
  const exported = JSON.stringify(await stack.resources());
  for (const line of secretLines) {
    assert.ok(!stack.stateFile().includes(line) && !exported.includes(line), "the generated private host key is not in the state, not even encrypted");
    assert.ok(!stack.output().includes(line), "nor in the engine output");
  }
});

test("a changed system previews an update; a changed layout previews a replace", async () => {
  stack.setProgram(program(v2));
  let preview = await stack.preview();
  assert.equal(preview.changeSummary["update"], 1, stack.output());
  assert.equal(preview.changeSummary["replace"], undefined);
  assert.doesNotMatch(await previewOutput(), /kexec into the NixOS installer|no kexec \(install\.phases|wipes/, "an update is no create: no install line");

  stack.setProgram(program(v1, "xfs"));
  preview = await stack.preview();
  assert.equal(preview.changeSummary["replace"], 1, stack.output());
});
