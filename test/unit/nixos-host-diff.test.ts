import { test } from "node:test";
import * as assert from "node:assert/strict";
import { diffHost } from "../../provider/host/diff";
import { UNKNOWN } from "../../provider/util/unknown";

const A = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-a";
const B = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-b";
const base = {
  connection: { host: "10.0.0.1" },
  system: { storePath: A },
  toplevel: A,
  layoutHash: "1".repeat(64),
  reinstallTriggers: { vm: "i-1" },
};
const olds = { ...base, currentSystem: A, generation: 3, hostKey: "ssh-ed25519 AAAA", stateVersion: 1 };

test("nothing changed: no changes", () => {
  assert.deepEqual(diffHost(olds, base), { changes: false, replaces: [], deleteBeforeReplace: false });
});

test("a new toplevel is an update, not a replace", () => {
  const d = diffHost(olds, { ...base, system: { storePath: B }, toplevel: B });
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
});

test("a changed layout hash is a replace, deleted before it is replaced", () => {
  const d = diffHost(olds, { ...base, layoutHash: "2".repeat(64) });
  assert.deepEqual(d.replaces, ["diskLayout"]);
  assert.equal(d.deleteBeforeReplace, true);
});

test("a changed reinstall trigger is a replace", () => {
  const d = diffHost(olds, { ...base, reinstallTriggers: { vm: "i-2" } });
  assert.deepEqual(d.replaces, ["reinstallTriggers"]);
});

test("an unknown trigger (a VM about to be replaced) previews as a replace", () => {
  const d = diffHost(olds, { ...base, reinstallTriggers: { vm: UNKNOWN } });
  assert.deepEqual(d.replaces, ["reinstallTriggers"]);
});

test("only the connection changed: an update with nothing to switch", () => {
  const d = diffHost(olds, { ...base, connection: { host: "10.0.0.2" } });
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
});

test("a refreshed (drifted) toplevel in state makes the next up an update back", () => {
  const d = diffHost({ ...olds, toplevel: B }, base);
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
});
