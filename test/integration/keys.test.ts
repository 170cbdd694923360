// NixosHost keys on a namespace host with real sshd: written with owner, group and mode
// (names resolved on the machine), changed, removed; owners the machine lacks refused before
// anything is written; pre-activation keys in place before switch-to-configuration runs,
// post-activation ones after it; refresh notices a key gone or changed. Another local
// account races to read every file and plants symlinks at the key's names: it reads nothing.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { nixosHostSchema, type NixosHostSpec } from "../../provider/schema/nixos-host";
import { checkedKeys, planKeys, type KeyPlan } from "../../provider/keys";
import { readHost, switchHost, updateKeys } from "../../provider/host/operations";
import { shellQuote } from "../../provider/ssh";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

const ATTACKER_UID = 4243;
const LOOT = "/tmp/.mallory-keys";
const STOP = "/tmp/.mallory-keys-stop";

let host: TestHost;
let v1: string;
let v2: string;
let deployerDir: string;
const secret = (label: string) => `${label}-${randomBytes(12).toString("hex")}`;

before(async () => {
  [v1, v2] = await Promise.all([buildTestSystem({ label: "keys-v1" }), buildTestSystem({ label: "keys-v2" })]);
  host = await startHost({ name: "keys", state: "nixos", system: v1 });
  // Users in the host's /etc overlay only.
  await host.run("groupadd -f keys && groupadd svc && useradd -M -N -g svc -s /bin/sh svc");
  await host.run(`useradd -u ${ATTACKER_UID} -M -N -d /tmp -s /bin/sh mallory`);
  deployerDir = mkdtempSync(path.join(tmpdir(), "keys-deployer-"));
});

after(async () => {
  await host?.run(`touch ${STOP}`).catch(() => undefined);
  await host?.stop();
  if (deployerDir) rmSync(deployerDir, { recursive: true, force: true });
});

/** The spec `check` hands update: keys with defaults and digests. */
function spec(toplevel: string, keys: Record<string, unknown>): NixosHostSpec {
  const parsed = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
    keys,
  });
  return { ...parsed, keys: checkedKeys(parsed.keys) as NixosHostSpec["keys"] };
}

/** What a run records: the declared keys become the recorded ones once it succeeded. */
let recorded: NixosHostSpec["keys"] = {};
async function upKeys(s: NixosHostSpec, lines: string[] = [], drift?: unknown): Promise<KeyPlan> {
  const plan = planKeys(recorded, s.keys, drift);
  await updateKeys(s, plan, host.hostPublicKey, (l) => lines.push(l), "keys test");
  recorded = s.keys;
  return plan;
}

const statOf = (p: string) => host.run(`stat -c '%U %G %a' ${shellQuote(p)}`).then((s) => s.trim());
const generation = () => host.run("readlink /nix/var/nix/profiles/system").then((s) => s.trim());

test("keys are written with their owner, group and mode; /run/keys is made like NixOS's (0750, group keys)", async () => {
  const api = secret("api-token");
  const tls = secret("tls-key");
  const keyFile = path.join(deployerDir, "tls.key");
  writeFileSync(keyFile, tls);
  const lines: string[] = [];
  const s = spec(v1, {
    "api-token": { content: api },
    "tls.key": { file: keyFile, owner: "svc", group: "svc", mode: "0440" },
    "db.env": { content: "DB_PASSWORD=x\n", destDir: "/var/lib/app-secrets", group: "svc", mode: "0640" },
  });
  const plan = await upKeys(s, lines);
  assert.deepEqual(plan.write.map((w) => [w.name, w.reason]), [["api-token", "new"], ["tls.key", "new"], ["db.env", "new"]]);
  assert.equal(await host.run("cat /run/keys/api-token"), api);
  assert.equal(await host.run("cat /run/keys/tls.key"), tls);
  assert.equal(await statOf("/run/keys"), "root keys 750");
  assert.equal(await statOf("/run/keys/api-token"), "root root 600");
  assert.equal(await statOf("/run/keys/tls.key"), "svc svc 440");
  assert.equal(await statOf("/var/lib/app-secrets/db.env"), "root svc 640");
  assert.equal(await host.run("runuser -u svc -- cat /var/lib/app-secrets/db.env"), "DB_PASSWORD=x", "the group reads it");
  assert.equal(await host.run("ls -A /run/keys /var/lib/app-secrets | grep nixos-pulumi ; true"), "", "no staging directory left");
  assert.ok(!lines.join("\n").includes(api) && !lines.join("\n").includes(tls), "no content in progress lines");
});

test("a changed key is written again, unchanged ones are not touched; a dropped key is removed", async () => {
  const before = await host.run("stat -c %i /run/keys/api-token");
  const tlsBefore = await host.run("cat /run/keys/tls.key");
  const keyFile = path.join(deployerDir, "tls.key");
  const tls = secret("tls-key-2");
  writeFileSync(keyFile, tls);
  const lines: string[] = [];
  const s = spec(v1, {
    "api-token": { content: await host.run("cat /run/keys/api-token") },
    "tls.key": { file: keyFile, owner: "svc", group: "svc", mode: "0400" },
  });
  const plan = await upKeys(s, lines);
  assert.deepEqual(plan.write.map((w) => [w.name, w.reason]), [["tls.key", "content changed, mode 0440 → 0400"]]);
  assert.deepEqual(plan.remove, [{ name: "db.env", path: "/var/lib/app-secrets/db.env" }]);
  assert.notEqual(tlsBefore, tls);
  assert.equal(await host.run("cat /run/keys/tls.key"), tls);
  assert.equal(await statOf("/run/keys/tls.key"), "svc svc 400");
  assert.equal(await host.run("stat -c %i /run/keys/api-token"), before, "the unchanged key was not rewritten");
  assert.notEqual((await host.exec("test -e /var/lib/app-secrets/db.env")).code, 0, "the dropped key is gone");
  assert.ok(lines.some((l) => l === "keys: db.env removed from /var/lib/app-secrets/db.env"), lines.join("\n"));
});

test("an owner or group the machine lacks fails naming the key and field, before any key is written", async () => {
  const fresh = secret("fresh");
  const s = spec(v1, {
    ...recorded,
    "a-new-one": { content: fresh },
    webhook: { content: secret("webhook"), owner: "nobody-here", group: "svc" },
    cert: { content: secret("cert"), group: "no-such-group" },
  });
  await assert.rejects(upKeys(s), (err: Error) => {
    assert.match(err.message, /keys\["webhook"\]\.owner: no user "nobody-here"/);
    assert.match(err.message, /keys\["cert"\]\.group: no group "no-such-group"/);
    assert.match(err.message, /nothing written/);
    assert.match(err.message, /fix: .*uploadAt: "post-activation"/);
    return true;
  });
  assert.notEqual((await host.exec("test -e /run/keys/a-new-one")).code, 0, "no key was written");
  assert.equal(await host.run("ls /run/keys | sort | tr '\\n' ' '"), "api-token tls.key ");
});

test("refresh finds a key missing (as after a reboot) or changed on the machine; the next run writes it again", async () => {
  const s = spec(v1, recorded);
  assert.equal((await readHost(s, v1, host.hostPublicKey)).keyDrift, undefined, "nothing drifted yet");
  await host.run("rm /run/keys/api-token && chmod 444 /run/keys/tls.key");
  const { keyDrift } = await readHost(s, v1, host.hostPublicKey);
  assert.deepEqual(keyDrift, { "api-token": "missing", "tls.key": "changed" });
  const lines: string[] = [];
  const plan = await upKeys(s, lines, keyDrift);
  assert.deepEqual(plan.write.map((w) => w.name), ["api-token", "tls.key"]);
  assert.equal(await statOf("/run/keys/tls.key"), "svc svc 400");
  assert.equal((await readHost(s, v1, host.hostPublicKey)).keyDrift, undefined);
});

test("on a switch, pre-activation keys are in place before switch-to-configuration runs and post-activation ones after it", async () => {
  const generationBefore = await generation();
  const s = spec(v2, {
    ...recorded,
    early: { content: secret("early") },
    late: { content: secret("late"), uploadAt: "post-activation", owner: "svc" },
  });
  const plan = planKeys(recorded, s.keys, undefined);
  // The test system's switch-to-configuration rewrites /etc/nixos-test-release: its mtime is when it ran.
  await switchHost(s, v2, host.hostPublicKey, () => {}, { keys: plan });
  recorded = s.keys;
  const times = (await host.run("find /run/keys/early /run/keys/late /etc/nixos-test-release -printf '%p %T@\\n'")).trim().split("\n");
  const at = Object.fromEntries(times.map((l) => l.split(" ")).map(([p, t]) => [p!, Number(t)]));
  assert.ok(at["/run/keys/early"]! < at["/etc/nixos-test-release"]!, times.join("\n"));
  assert.ok(at["/run/keys/late"]! > at["/etc/nixos-test-release"]!, times.join("\n"));
  assert.equal(await host.run("readlink /run/current-system").then((x) => x.trim()), v2);
  assert.notEqual(await generation(), generationBefore);

  // Keys alone: written, and the system is not activated again.
  const release = await host.run("find /etc/nixos-test-release -printf '%T@'");
  await upKeys(spec(v2, { ...recorded, early: { content: secret("early-2") } }));
  assert.equal(await host.run("find /etc/nixos-test-release -printf '%T@'"), release, "no activation for a key change");
});

test("another local account reads no key and cannot redirect one through names it planted; a destDir it owns is refused", async () => {
  const token = secret("shared-token");
  // Planted before the run: symlinks at the key's name and at names an uploader might use.
  await host.run(
    `runuser -u mallory -- sh -c ${shellQuote(`mkdir -p ${LOOT} && : > ${LOOT}/planted && chmod 666 ${LOOT}/planted && ` +
      `echo canary-readable > /tmp/canary && chmod 644 /tmp/canary && ln -s ${LOOT}/planted /tmp/shared-token && ln -s ${LOOT}/planted /tmp/shared-token.tmp && mkdir -m 777 /tmp/mallory-dir`)}`,
  );
  const race = `while [ ! -e ${STOP} ]; do find /tmp /run/keys /var/lib -maxdepth 3 \\( -type f -o -type l \\) 2>/dev/null | while IFS= read -r f; do case "$f" in ${LOOT}/*) continue ;; esac; cat "$f" >> ${LOOT}/read 2>/dev/null; done; sleep 0.005; done`;
  await host.run(`rm -f ${STOP}; setsid runuser -u mallory -- sh -c ${shellQuote(race)} </dev/null >/dev/null 2>&1 &`);
  try {
    // /tmp is shared and sticky: the key is renamed over the planted symlink, never written through it.
    for (let i = 0; i < 5; i++) {
      await upKeys(spec(v2, { ...recorded, "shared-token": { content: `${token}-${i}`, destDir: "/tmp", group: "svc", mode: "0640" } }));
    }
    await assert.rejects(upKeys(spec(v2, { ...recorded, evil: { content: token, destDir: "/tmp/mallory-dir" } })), (err: Error) => {
      assert.match(err.message, /refused to write keys\["evil"\] \(\/tmp\/mallory-dir\/evil\): \/tmp\/mallory-dir is owned by uid 4243, not root/);
      assert.ok(!err.message.includes(token));
      return true;
    });
  } finally {
    await host.run(`touch ${STOP}; sleep 0.3`);
  }
  assert.equal(await host.run(`cat ${LOOT}/planted`), "", "nothing was written through the planted symlink");
  assert.equal(await statOf("/tmp/shared-token"), "root svc 640");
  assert.equal(await host.run("cat /tmp/shared-token"), `${token}-4`);
  const loot = await host.run(`cat ${LOOT}/read 2>/dev/null; true`);
  assert.ok(loot.includes("canary-readable"), "the race loop ran and read what it could");
  assert.ok(!loot.includes(token), "the account read a key");
  assert.equal(await host.run("ls -A /tmp/mallory-dir"), "");
  assert.equal(await host.run("ls -A /tmp /run/keys | grep nixos-pulumi ; true"), "", "no staging directory left");
});
