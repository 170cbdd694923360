// NixosHost keys with the real Pulumi CLI: adopt a host with keys, preview a key change (by
// name, never content), a key-only up that does not activate the system, a dropped key, a
// refresh after /run/keys was emptied (a reboot) and the up that restores it, an owner the
// machine lacks; then every content and digest searched for in the state, its backups and
// history, and the engine output.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";

let host: TestHost;
let stack: TestStack;
let v1: string;
let tlsFile: string;
const errors: string[] = [];
const word = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`;
const contents = { api1: word("api"), api2: word("api"), tls1: word("tls"), tls2: word("tls"), db: word("db-password"), bad: word("bad-owner") };

type Keys = ConstructorParameters<typeof NixosHost>[1]["keys"];

function program(keys: Keys) {
  return async () => {
    const h = new NixosHost("vault", {
      connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { storePath: v1 },
      keys,
    });
    return { generation: h.generation };
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    const s = statSync(p);
    return s.isDirectory() ? filesUnder(p) : s.isFile() ? [p] : [];
  });
}

const onHost = (command: string) => host.run(command).then((s) => s.trim());
const activatedAt = () => onHost("find /etc/nixos-test-release -printf '%T@'");

before(async () => {
  v1 = await buildTestSystem({ label: "keys-e2e" });
  host = await startHost({ name: "vault", state: "nixos", system: v1 });
  await host.run("groupadd -f keys && groupadd web && useradd -M -N -g web -s /bin/sh web");
  stack = await createTestStack("keys", program({}));
  tlsFile = path.join(stack.workDir, "tls.key");
  writeFileSync(tlsFile, contents.tls1);
});

after(async () => {
  await stack?.remove();
  await host?.stop();
});

test("adopting a host writes its keys with owner, group and mode", async () => {
  stack.setProgram(program({
    "api-token": { content: contents.api1 },
    "tls.key": { file: tlsFile, owner: "web", group: "web", mode: "0400", uploadAt: "post-activation" },
    "db.env": { content: contents.db, group: "web", mode: "0640" },
  }));
  const up = await stack.up();
  assert.equal(up.outputs["generation"]?.value, 1, stack.output());
  assert.equal(await onHost("cat /run/keys/api-token"), contents.api1);
  assert.equal(await onHost("cat /run/keys/tls.key"), contents.tls1);
  assert.equal(await onHost("stat -c '%U %G %a' /run/keys/tls.key /run/keys/db.env | tr '\\n' ,"), "web web 400,root web 640,");
});

test("changed and dropped keys preview by name without content; the up writes and removes them and does not activate the system", async () => {
  writeFileSync(tlsFile, contents.tls2);
  stack.setProgram(program({
    "api-token": { content: contents.api2 },
    "tls.key": { file: tlsFile, owner: "web", group: "web", mode: "0400", uploadAt: "post-activation" },
  }));
  let shown = "";
  const preview = await stack.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  assert.equal(preview.changeSummary["update"], 1, shown);
  assert.ok(shown.includes("vault: key api-token: content changed; uploaded to /run/keys/api-token"), shown);
  assert.ok(shown.includes("vault: key tls.key: content changed; uploaded to /run/keys/tls.key"), shown);
  assert.ok(shown.includes("vault: key db.env: removed from /run/keys/db.env"), shown);
  assert.ok(shown.includes("vault: keys only: the system is not activated again"), shown);
  const activated = await activatedAt();
  const generation = await onHost("readlink /nix/var/nix/profiles/system");
  await stack.up();
  assert.equal(await onHost("cat /run/keys/api-token"), contents.api2);
  assert.equal(await onHost("cat /run/keys/tls.key"), contents.tls2);
  assert.equal(await onHost("ls /run/keys | tr '\\n' ' '"), "api-token tls.key", "the dropped key is gone");
  assert.equal(await activatedAt(), activated, "the system was not activated again");
  assert.equal(await onHost("readlink /nix/var/nix/profiles/system"), generation);
});

test("after a reboot empties /run/keys, refresh notices and the next up writes the keys again", async () => {
  // What a reboot does to /run/keys (in memory on NixOS); the QEMU tier reboots for real.
  await host.run("rm -rf /run/keys");
  const refresh = await stack.refresh();
  assert.equal(refresh.summary.resourceChanges?.["update"], 1, stack.output());
  let shown = "";
  await stack.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  assert.ok(shown.includes("vault: key api-token: missing on the machine (a reboot empties /run/keys), written again; uploaded to /run/keys/api-token"), shown);
  await stack.up();
  assert.equal(await onHost("cat /run/keys/api-token"), contents.api2);
  assert.equal(await onHost("stat -c '%U %G %a' /run/keys/tls.key"), "web web 400");
  const again = await stack.up();
  assert.equal(again.summary.resourceChanges?.["update"], undefined, "nothing left to do");
});

test("a key whose owner the machine lacks fails the up naming the key and field; nothing is written", async () => {
  stack.setProgram(program({
    "api-token": { content: contents.api2 },
    "tls.key": { file: tlsFile, owner: "web", group: "web", mode: "0400", uploadAt: "post-activation" },
    webhook: { content: contents.bad, owner: "hooks" },
  }));
  await assert.rejects(stack.up(), (err: Error) => {
    errors.push(err.message);
    assert.match(err.message, /keys\["webhook"\]\.owner: no user "hooks"/);
    return true;
  });
  assert.notEqual((await host.exec("test -e /run/keys/webhook")).code, 0);
});

test("no key content or digest appears in the state, its backups and history, or the engine output", () => {
  const backend = path.join(stack.workDir, "state", ".pulumi");
  const files = filesUnder(stack.workDir).filter((f) => f !== tlsFile);
  assert.ok(files.some((f) => f.startsWith(path.join(backend, "history"))), "the backend kept history");
  const places: [string, string][] = [
    ...files.map((f) => [path.relative(stack.workDir, f), readFileSync(f).toString("latin1")] as [string, string]),
    ["engine output", stack.output()],
    ...errors.map((e, i) => [`error ${i + 1}`, e] as [string, string]),
  ];
  const needles: Record<string, string> = {};
  for (const [name, value] of Object.entries(contents)) {
    needles[name] = value;
    needles[`${name} sha256`] = createHash("sha256").update(value).digest("hex");
  }
  const leaks: string[] = [];
  for (const [what, value] of Object.entries(needles)) for (const [where, text] of places) if (text.includes(value)) leaks.push(`${what} in ${where}`);
  assert.deepEqual(leaks, []);
  assert.match(stack.stateFile(), /ciphertext/);
  assert.match(stack.stateFile(), /api-token/, "the key names are readable in the state");
});
