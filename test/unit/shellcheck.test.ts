// Every shell script the provider runs as root on a target passes shellcheck: the shipped
// scripts, and the create/mount/release scripts rendered for layouts that use every node type
// (gpt, filesystem, swap, btrfs with subvolumes, luks, lvm, tmpfs), from TypeScript and from
// disko's .nix files.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { renderLayout, resolveLayout } from "../../provider/disk";
import { luksLvmLayout, tutorialLayout } from "../fixtures/layouts";
import { uploadCommand, uploadFilesCommand } from "../../provider/ssh/private-paths";

const repo = path.resolve(__dirname, "../../..");
const fixture = (name: string) => path.join(repo, "test/fixtures/disko", name);

async function shellcheck(files: string[]): Promise<{ code: number; output: string }> {
  const r = await execa("shellcheck", ["--format=gcc", ...files], { reject: false });
  return { code: r.exitCode ?? -1, output: `${r.stdout}${r.stderr}` };
}

function shippedScripts(dir = path.join(repo, "provider")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? shippedScripts(path.join(dir, e.name)) : e.name.endsWith(".sh") ? [path.join(dir, e.name)] : [],
  );
}

test("the shell scripts shipped in provider/ pass shellcheck", async () => {
  const files = shippedScripts();
  assert.ok(files.length >= 3, files.join(" "));
  const r = await shellcheck(files);
  assert.equal(r.code, 0, r.output);
});

test("the create, mount and release scripts rendered for every kind of node pass shellcheck", async () => {
  const layouts = [
    await resolveLayout(tutorialLayout()),
    await resolveLayout(tutorialLayout("/dev/nvme0n1", "btrfs", "vfat")),
    await resolveLayout(luksLvmLayout({ espSize: "64M", rootSize: "100%", keyFile: "/run/keys/disk key" })),
    ...(await Promise.all(readdirSync(path.join(repo, "test/fixtures/disko")).filter((f) => f !== "nixos-config.nix").map((f) => resolveLayout({ diskoFile: fixture(f) })))),
  ];
  const dir = mkdtempSync(path.join(os.tmpdir(), "shellcheck-"));
  const files: string[] = [];
  layouts.forEach((layout, i) => {
    const r = renderLayout(layout);
    for (const [kind, script] of Object.entries({ create: r.script, mount: r.mountScript, release: r.releaseScript })) {
      const file = path.join(dir, `layout${i}-${kind}.sh`);
      writeFileSync(file, script);
      files.push(file);
    }
  });
  const r = await shellcheck(files);
  assert.equal(r.code, 0, r.output);
});

test("the upload commands (one file, several with owners and a command before) pass shellcheck", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "shellcheck-upload-"));
  const commands = {
    one: uploadCommand("/mnt/etc/my file's name", "0600"),
    several: uploadFilesCommand(
      [
        { path: "/mnt/etc/ssh/ssh_host_ed25519_key", mode: "0600", owner: 0, group: 0, bytes: 400 },
        { path: "/mnt/root/a b", mode: "4755", bytes: 3 },
      ],
      "mkdir -p /mnt/etc/ssh && chmod 0755 /mnt/etc/ssh",
    ),
  };
  const files = [];
  for (const [name, command] of Object.entries(commands)) {
    // The script guarded() hands to `sh -c`, unquoted by a shell.
    assert.match(command, /^sh -c '/);
    const { stdout: script } = await execa("sh", ["-c", `printf %s ${command.slice("sh -c ".length)}`]);
    const file = path.join(dir, `${name}.sh`);
    writeFileSync(file, `#!/bin/sh\n${script}\n`);
    files.push(file);
  }
  const r = await shellcheck(files);
  assert.equal(r.code, 0, r.output);
});
