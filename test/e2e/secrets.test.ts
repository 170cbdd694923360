// Every secret a NixosHost takes, searched for in plain text everywhere Pulumi writes: the
// state file, the file backend's backups and history, the whole work directory, the
// engine's output and the error messages of failed operations. Install through a jump host
// (password login) to a target reached with a passphrase-protected key, with pre-generated
// host keys, a disk key, an extra file and a key (`keys`, left for after the first boot), as a
// user whose sudo asks for its password; then a failing switch and a failing connection. The install runs with `--debug -v=9 --logtostderr`,
// whose log holds secrets only where Pulumi itself logs every RPC property.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { tutorialLayout } from "../fixtures/layouts";
import { generateKeyPair, type KeyPair } from "../harness/keys";

let jump: TestHost;
let target: TestHost;
let stack: TestStack;
let clientKey: KeyPair;
let installedHostKey: KeyPair;
let v1: string;
let broken: string;
const errors: string[] = [];
let verboseLog = "";

const word = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`;
const secrets = {
  passphrase: word("passphrase"),
  jumpPassword: word("jump-password"),
  diskKey: word("disk-key"),
  extraFile: word("extra-file-content"),
  sudoPassword: word("sudo-password"),
  key: word("api-token"),
};

function program(system: string, jumpPassword = secrets.jumpPassword) {
  return async () => {
    const layout = new DiskLayout("disk", tutorialLayout("/dev/vda", "ext4", "ext4") as never);
    const h = new NixosHost("secretive", {
      connection: {
        host: target.address,
        // A user whose sudo asks for its password: the install runs through `sudo -S`.
        user: "ops",
        sudo: true,
        sudoPassword: secrets.sudoPassword,
        privateKey: clientKey.privateKey,
        privateKeyPassword: secrets.passphrase,
        proxy: { host: jump.address, password: jumpPassword, hostKey: jump.hostPublicKey, dialErrorLimit: 1 },
        dialErrorLimit: 1,
      },
      system: { storePath: system },
      diskLayout: layout,
      install: {
        phases: ["disko", "install"],
        extraFiles: { "/etc/secret.conf": { content: secrets.extraFile + "\n", mode: "0600" } },
        hostKeys: { ed25519: { privateKey: installedHostKey.privateKey, publicKey: installedHostKey.publicKey } },
        diskKeys: { "/tmp/disk.key": secrets.diskKey },
      },
      keys: { "api-token": { content: secrets.key } },
    });
    return { toplevel: h.toplevel };
  };
}

/** Every secret value, private keys by each line of their base64 body. */
function needles(): Record<string, string> {
  const out: Record<string, string> = { ...secrets, "api-token digest": createHash("sha256").update(secrets.key).digest("hex") };
  for (const [name, key] of [["client key", clientKey], ["pre-generated host key", installedHostKey]] as const) {
    key.privateKey
      .split("\n")
      .filter((l) => l.length >= 20 && !l.startsWith("-----"))
      .forEach((line, i) => (out[`${name} line ${i + 1}`] = line));
  }
  return out;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    const s = statSync(p);
    return s.isDirectory() ? filesUnder(p) : s.isFile() ? [p] : [];
  });
}

before(async () => {
  [v1, broken] = await Promise.all([buildTestSystem({ label: "secret-v1" }), buildTestSystem({ label: "secret-broken", variant: "fail" })]);
  clientKey = await generateKeyPair("secret-client", secrets.passphrase);
  installedHostKey = await generateKeyPair("secret-installed-host");
  jump = await startHost({ name: "jump", state: "rescue", rootPassword: secrets.jumpPassword });
  await jump.run(`echo 'root:${secrets.jumpPassword}' | chpasswd`);
  target = await startHost({ name: "secretive", state: "installer", disks: [{ name: "vda", sizeMiB: 1024 }] });
  await target.run(
    `useradd -d /tmp/home-ops -m -G sudo -s /bin/sh ops && echo 'ops:${secrets.sudoPassword}' | chpasswd && ` +
      `mkdir -p /tmp/home-ops/.ssh && echo '${clientKey.publicKey}' > /tmp/home-ops/.ssh/authorized_keys && chown -R ops /tmp/home-ops`,
  );
  stack = await createTestStack("secrets", program(v1));
});

after(async () => {
  await target?.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
  await stack?.remove();
  await target?.stop();
  await jump?.stop();
});

test("an install through a password jump host with a passphrase key, host keys, a disk key and an extra file", async () => {
  // Run the way users attach to bug reports; the log is searched below.
  const { result: up, log } = await stack.upVerbose();
  verboseLog = log;
  assert.equal(up.outputs["toplevel"]?.value, v1, log.slice(-5000));
  assert.equal((await target.run("cat /mnt/etc/secret.conf")).trim(), secrets.extraFile, "the extra file was written");
  assert.equal((await target.run("cat /tmp/disk.key")).trim(), secrets.diskKey, "the disk key was uploaded");
  // No reboot phase: the installed system has not booted, so its keys wait for the next up.
  const host = (await stack.resources()).find((r) => r.type.endsWith("NixosHost"));
  assert.deepEqual(host?.outputs?.["keyDrift"], { "api-token": "missing" });
  assert.ok(log.includes("keys: not written (api-token): the machine has not booted the installed system; the next up writes them"), log.slice(-5000));
  assert.notEqual((await target.exec("test -e /run/keys/api-token")).code, 0);
});

test("a failing switch and a refused jump-host password fail with errors", async () => {
  stack.setProgram(program(broken));
  await assert.rejects(stack.up(), (err: Error) => {
    errors.push(err.message);
    assert.match(err.message, /activation of .* failed/);
    return true;
  });
  stack.setProgram(program(broken, "not-the-jump-password"));
  await assert.rejects(stack.up(), (err: Error) => {
    errors.push(err.message);
    assert.match(err.message, /cannot connect as root/);
    return true;
  });
});

test("no secret appears in plain text in the state, its backups and history, the engine output or any error", () => {
  const backend = path.join(stack.workDir, "state", ".pulumi");
  const files = filesUnder(stack.workDir);
  const backups = files.filter((f) => f.startsWith(path.join(backend, "backups")));
  const history = files.filter((f) => f.startsWith(path.join(backend, "history")));
  assert.ok(backups.length >= 2, `the file backend kept backups (${backups.length})`);
  assert.ok(history.length >= 2, `the file backend kept history (${history.length})`);
  const places: [string, string][] = [
    ...files.map((f) => [path.relative(stack.workDir, f), readFileSync(f).toString("latin1")] as [string, string]),
    ["engine output", stack.output()],
    ...errors.map((e, i) => [`error ${i + 1}`, e] as [string, string]),
  ];
  const leaks: string[] = [];
  for (const [secret, value] of Object.entries(needles())) {
    for (const [where, text] of places) if (text.includes(value)) leaks.push(`${secret} in ${where}`);
  }
  assert.deepEqual(leaks, []);
  assert.match(stack.stateFile(), /ciphertext/);
});

/** A verbose log's records: each JSON log line, or a console line with the lines that continue it (a key's body). */
function logRecords(log: string): string[] {
  const records: string[] = [];
  for (const line of log.split("\n")) {
    const starts = records.length === 0 || /^\{"time"/.test(line) || /^\s*[a-z]+: /.test(line) || /^\S/.test(line);
    if (starts) records.push(line);
    else records[records.length - 1] += `\n${line}`;
  }
  return records;
}

test("the install's verbose log (up --debug -v=9 --logtostderr) holds secrets only in Pulumi's own RPC and registration lines, as the README warns", () => {
  const log = verboseLog;
  assert.ok(log.length > 0, "the install ran verbosely");
  // Pulumi's engine logs every property of every RPC at -v=9, its Node SDK every registered resource's outputs at --debug.
  const pulumiOwn = /(Un)?[Mm]arshaling property for RPC\[|RegisterResource(Outputs)? RPC (prepared|finished)/;
  const elsewhere: string[] = [];
  let inPulumiLines = 0;
  for (const record of logRecords(log)) {
    for (const [secret, value] of Object.entries(needles())) {
      if (!record.includes(value)) continue;
      if (pulumiOwn.test(record)) inPulumiLines++;
      else elsewhere.push(`${secret}: ${record.slice(0, 300)}`);
    }
  }
  assert.deepEqual(elsewhere, [], "no secret in a line of the provider's own");
  assert.ok(inPulumiLines > 0, "the README says verbose logs hold secrets in clear; if Pulumi stopped logging them, update README's Secrets section");
});
