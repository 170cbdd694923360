// What `check` and `diff` make of NixosHost keys, without a machine: validation naming the
// field, the digest check adds, and which keys a run writes or removes and why.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hostInputIssues } from "../../provider/host/validate";
import { checkedKeys, describeKeyPlan, planKeys } from "../../provider/keys";
import { UNKNOWN } from "../../provider/util/unknown";

const base = { connection: { host: "203.0.113.10" }, system: { storePath: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-web" } };
const issues = (keys: unknown) => hostInputIssues({ ...base, keys }).map((i) => `${i.path}: ${i.message}`);

test("bad keys are refused naming the key and field", () => {
  assert.deepEqual(issues({ "a/b": { content: "x" } }), ["keys.a/b: key names are file names: letters, digits, '.', '_' and '-', not starting with '.' or '-'"]);
  assert.deepEqual(issues({ tok: { content: "x", file: "/k" } }), ["keys.tok: give exactly one of content (the secret) or file (a path on the deploying machine)"]);
  assert.deepEqual(issues({ tok: {} }), ["keys.tok: give exactly one of content (the secret) or file (a path on the deploying machine)"]);
  assert.match(issues({ tok: { content: "x", owner: "Bad Name" } })[0]!, /^keys\.tok\.owner: give the owner as a user name/);
  assert.match(issues({ tok: { content: "x", mode: "rw" } })[0]!, /^keys\.tok\.mode: give an octal mode/);
  assert.match(issues({ tok: { content: "x", destDir: "run/keys" } })[0]!, /^keys\.tok\.destDir: give an absolute directory/);
  assert.match(issues({ tok: { content: "x", uploadAt: "later" } })[0]!, /^keys\.tok\.uploadAt: uploadAt is "pre-activation"/);
  assert.deepEqual(issues({ tok: { content: "x", owner: "nginx", group: "keys", mode: "0640", uploadAt: "post-activation", destDir: "/var/lib/secrets" } }), []);
});

test("check fills in the defaults and a digest of the content, replacing any given one", () => {
  const keys = checkedKeys({ tok: { content: "s3cret", digest: "0".repeat(64) } }) as Record<string, Record<string, unknown>>;
  assert.deepEqual(keys["tok"], {
    content: "s3cret", destDir: "/run/keys", owner: "root", group: "root", mode: "0600", uploadAt: "pre-activation",
    digest: createHash("sha256").update("s3cret").digest("hex"),
  });
  assert.deepEqual(checkedKeys({ tok: UNKNOWN }), { tok: UNKNOWN }, "an unknown entry stays unknown");
});

test("a key file that cannot be read fails check naming the key", () => {
  assert.throws(() => checkedKeys({ tls: { file: "/nonexistent/tls.key" } }), /keys\["tls"\]\.file: cannot read \/nonexistent\/tls\.key: ENOENT/);
});

const recorded = checkedKeys({ a: { content: "1" }, b: { content: "2", uploadAt: "post-activation" }, c: { content: "3" } }) as Record<string, unknown>;

test("only changed keys are written; an uploadAt change records it without writing; a moved key is written and its old file removed", () => {
  const declared = checkedKeys({
    a: { content: "1", mode: "0640" },
    b: { content: "2" },
    c: { content: "3", destDir: "/var/lib/secrets" },
    d: { content: "4" },
  });
  const plan = planKeys(recorded, declared, undefined);
  assert.deepEqual(plan.write.map((w) => [w.name, w.reason]), [["a", "mode 0600 → 0640"], ["c", "destDir /run/keys → /var/lib/secrets"], ["d", "new"]]);
  assert.deepEqual(plan.remove, [{ name: "c", path: "/run/keys/c" }]);
  assert.equal(plan.changed, true);
  assert.deepEqual(describeKeyPlan(plan, false), [
    "key a: mode 0600 → 0640; uploaded to /run/keys/a",
    "key c: destDir /run/keys → /var/lib/secrets; uploaded to /var/lib/secrets/c",
    "key d: new, uploaded to /run/keys/d",
    "key c: removed from /run/keys/c",
    "keys only: the system is not activated again",
  ]);
  const uploadAtOnly = planKeys(recorded, { ...recorded, b: { ...(recorded["b"] as object), uploadAt: "pre-activation" } }, undefined);
  assert.deepEqual([uploadAtOnly.write, uploadAtOnly.remove, uploadAtOnly.changed], [[], [], true]);
});

test("no change, refresh's drift, and keys not known until the update", () => {
  assert.deepEqual(planKeys(recorded, recorded, undefined), { write: [], remove: [], changed: false });
  assert.equal(planKeys(undefined, {}, undefined).changed, false, "state without keys (an earlier version) and no keys: no change");
  assert.equal(planKeys(undefined, undefined, undefined).changed, false, "a host without keys");
  const drift = planKeys(recorded, recorded, { a: "missing" });
  assert.deepEqual(drift.write.map((w) => w.name), ["a"]);
  assert.deepEqual(describeKeyPlan(drift, true), ["key a: missing on the machine (a reboot empties /run/keys), written again; uploaded to /run/keys/a before the activation"]);
  assert.equal(planKeys(recorded, UNKNOWN, undefined).changed, true);
  assert.deepEqual(planKeys(recorded, { ...recorded, a: UNKNOWN }, undefined).write.map((w) => [w.name, w.reason]), [["a", "its value is known only during the update"]]);
});
