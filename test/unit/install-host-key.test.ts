// The installed system's host key: generated in Node's crypto in the format sshd loads, and
// a given install.hostKeys refused before any connection when sshd could not use it or its
// public half is not the one that would be pinned.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { generateEd25519KeyPair } from "../../provider/ssh";
import { parseHostInputs } from "../../provider/host/validate";
import { InputError } from "../../provider/errors";
import { generateKeyPair } from "../harness/keys";

test("a generated host key is an OpenSSH ed25519 key that ssh-keygen and sshd load, new each time", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "host-key-"));
  try {
    const key = generateEd25519KeyPair("root@example");
    assert.match(key.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/);
    assert.match(key.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+=*$/);
    const file = path.join(dir, "ssh_host_ed25519_key");
    writeFileSync(file, key.privateKey, { mode: 0o600 });
    const derived = await execa("ssh-keygen", ["-y", "-f", file]);
    assert.equal(derived.stdout.trim().split(" ").slice(0, 2).join(" "), key.publicKey, "the public key belongs to the private key");
    // sshd's own configuration test loads the host key (it fails on a key it cannot read).
    writeFileSync(path.join(dir, "sshd_config"), `HostKey ${file}\nUsePAM no\n`);
    await execa("mkdir", ["-p", "/run/sshd"]);
    const sshd = await execa("/usr/sbin/sshd", ["-t", "-f", path.join(dir, "sshd_config")], { reject: false });
    assert.equal(sshd.exitCode, 0, sshd.stderr);
    writeFileSync(file, key.privateKey.split("\n").filter((_, i) => i !== 3).join("\n"), { mode: 0o600 });
    assert.notEqual((await execa("/usr/sbin/sshd", ["-t", "-f", path.join(dir, "sshd_config")], { reject: false })).exitCode, 0, "sshd -t refuses a damaged key");
    assert.notEqual(generateEd25519KeyPair().publicKey, key.publicKey);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function inputs(hostKeys: unknown): Record<string, unknown> {
  return { connection: { host: "127.0.0.1" }, system: { storePath: "/nix/store/00000000000000000000000000000000-nixos-system-x" }, install: { phases: ["install"], hostKeys } };
}

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return err.issues;
    throw err;
  }
  return [];
}

test("install.hostKeys that sshd could not load, or whose public key does not match, fail naming the field (and no key)", async () => {
  const [a, b, encrypted] = await Promise.all([generateKeyPair("a"), generateKeyPair("b"), generateKeyPair("c", "passphrase")]);
  assert.deepEqual(issuesOf(() => parseHostInputs(inputs({ ed25519: { privateKey: a.privateKey, publicKey: a.publicKey } }))), []);
  const generated = generateEd25519KeyPair();
  assert.deepEqual(issuesOf(() => parseHostInputs(inputs({ ed25519: generated }))), [], "a generated key passes the same check");

  const mismatch = issuesOf(() => parseHostInputs(inputs({ ed25519: { privateKey: a.privateKey, publicKey: b.publicKey } })));
  assert.deepEqual(mismatch.map((i) => i.path), ["install.hostKeys.ed25519.publicKey"]);
  assert.match(mismatch[0]!.message, /does not belong to privateKey/);
  const enc = issuesOf(() => parseHostInputs(inputs({ ed25519: { privateKey: encrypted.privateKey, publicKey: encrypted.publicKey } })));
  assert.deepEqual(enc.map((i) => i.path), ["install.hostKeys.ed25519.privateKey"]);
  assert.match(enc[0]!.message, /encrypted/);
  const garbage = issuesOf(() => parseHostInputs(inputs({ ed25519: { privateKey: "not a key", publicKey: a.publicKey } })));
  assert.deepEqual(garbage.map((i) => i.path), ["install.hostKeys.ed25519.privateKey"]);
  for (const issue of [...mismatch, ...enc, ...garbage]) {
    for (const secret of [a.privateKey.split("\n")[3]!, encrypted.privateKey.split("\n")[3]!]) assert.ok(!issue.message.includes(secret));
  }
});
