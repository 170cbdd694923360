// State written by earlier versions (test/fixtures/state/, see make-fixture.js there) read in
// this version's shape: the same declaration diffs as no change. The real CLI's view of the
// same fixtures: test/e2e/state-upgrade.test.ts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { migrateHostState, NIXOS_HOST_STATE_VERSION } from "../../provider/resources/nixos-host-state";
import { diffHost, explainHostDiff } from "../../provider/host/diff";
import { hostLayoutHashes } from "../../provider/host/layout";
import { LAYOUT } from "../fixtures/state/layout";

const FIXTURES = path.resolve(__dirname, "..", "..", "..", "test", "fixtures", "state");
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).sort();

type Props = Record<string, unknown>;
const hostOf = (file: string) =>
  (JSON.parse(readFileSync(path.join(FIXTURES, file), "utf8")) as { resources: { type: string; outputs: Props }[] }).resources.find((r) => r.type === "NixosHost")!.outputs;

/** What this version's check hands diff for the program that wrote the fixture. */
async function newsFor(olds: Props): Promise<Props> {
  return {
    connection: olds["connection"],
    system: olds["system"],
    diskLayout: { declared: LAYOUT },
    __resourceName: "web",
    toplevel: olds["toplevel"],
    ...(await hostLayoutHashes({ declared: LAYOUT })),
  };
}

test("there are fixtures of earlier versions", () => {
  assert.ok(fixtures.length >= 3, fixtures.join(", "));
});

for (const file of fixtures) {
  test(`${file}: migrated to this version's shape, the same declaration is no change`, async () => {
    const recorded = hostOf(file);
    const migrated = await migrateHostState(recorded);
    assert.equal(migrated["stateVersion"], NIXOS_HOST_STATE_VERSION);
    assert.equal(migrated["__resourceName"], "web");
    assert.equal(migrated["resourceName"], undefined);
    assert.equal(migrated["needsReboot"], recorded["needsReboot"] ?? false);
    const news = await newsFor(recorded);
    assert.equal(migrated["layoutFormatHash"], news["layoutFormatHash"]);
    assert.deepEqual(diffHost(migrated, news), { changes: false, replaces: [], deleteBeforeReplace: false });
    assert.deepEqual(await migrateHostState(migrated), migrated, "migrating again changes nothing");
  });
}

test("a3bb5ea hashed the same layout otherwise: read as recorded, the upgrade alone would reinstall the host", async () => {
  const recorded = hostOf("1-a3bb5ea.json");
  const news = await newsFor(recorded);
  assert.notEqual(recorded["layoutHash"], news["layoutHash"]);
  assert.deepEqual(diffHost(recorded, news).replaces, ["diskLayout"]);
  assert.deepEqual(diffHost(await migrateHostState(recorded), news).replaces, []);
});

test("hashes an older version made of a diskoFile are not hashed again, and never reinstall on their own", async () => {
  const layout = { declared: { diskoFile: "./disko.nix" } };
  const recorded = { ...hostOf("3-23fc1e3.json"), diskLayout: layout, layoutHash: "1".repeat(64), layoutFormatHash: "2".repeat(64), layoutMountHash: "3".repeat(64) };
  const news = { ...(await newsFor(recorded)), diskLayout: layout, layoutHash: "4".repeat(64), layoutFormatHash: "5".repeat(64), layoutMountHash: "6".repeat(64) };
  const migrated = await migrateHostState(recorded);
  assert.equal(migrated["layoutFormatHash"], "2".repeat(64), "kept as recorded");
  const result = diffHost(migrated, news);
  assert.deepEqual(result, { changes: true, replaces: [], deleteBeforeReplace: false });
  assert.match(explainHostDiff(migrated, news, result).join("\n"), /diskLayout hash \(recorded by an older nixos-pulumi, which hashed the disks of \.\/disko\.nix otherwise; not reinstalled for that/);
  // Once this version recorded its own hashes, a changed file reinstalls as before.
  const current = { ...migrated, ...news, __olderLayoutHashes: undefined };
  assert.deepEqual(diffHost(current, { ...news, layoutFormatHash: "7".repeat(64) }).replaces, ["diskLayout"]);
});
