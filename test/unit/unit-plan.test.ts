// The unit plan: unit files parsed as switch-to-configuration-ng parses them, its rules
// (compare_units, handle_modified_unit, the loop over active units), and the preview's lines.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parseUnitText, readUnit, unitBool, type UnitInfo } from "../../provider/nix/unit-files";
import { bootUnits, byName, compareUnits, mountUnitName, planUnits, unitPlanLines } from "../../provider/host/unit-plan";
import { systemChanges } from "../../provider/host/system-changes";
import { buildTestSystem, UNIT_SCENARIO, UNIT_SCENARIO_JOBS } from "../harness/systems";

const parse = (...texts: string[]): UnitInfo => {
  const info: UnitInfo = new Map();
  for (const t of texts) parseUnitText(info, t);
  return info;
};
const plain = (info: UnitInfo) => Object.fromEntries([...info].map(([s, keys]) => [s, Object.fromEntries(keys)]));

test("unit files: sections of keys with every value, comments skipped, quotes removed, [Install] left out, escapes kept", () => {
  const info = parse('# comment\n[Unit]\nDescription="a web server"\n; another\nAfter=a.target\nAfter=dev-disk-by\\x2dlabel-root.device\n\n[Service]\nExecStart = /bin/web\n[Install]\nWantedBy=multi-user.target\n');
  assert.deepEqual(plain(info), {
    Unit: { Description: ["a web server"], After: ["a.target", "dev-disk-by\\x2dlabel-root.device"] },
    Service: { ExecStart: ["/bin/web"] },
  });
});

test("unit files: an empty value clears the values before it, also across drop-ins; a drop-in extends otherwise", () => {
  const info = parse("[Service]\nExecStart=/bin/a\nEnvironment=A=1\n", "[Service]\nExecStart=\nExecStart=/bin/b\nEnvironment=B=2\n", "[Service]\nX-RestartIfChanged=false\nX-RestartIfChanged=true\n");
  assert.deepEqual(info.get("Service")?.get("ExecStart"), ["/bin/b"]);
  assert.deepEqual(info.get("Service")?.get("Environment"), ["A=1", "B=2"]);
  assert.equal(unitBool(info, "Service", "X-RestartIfChanged", false), true, "the last value decides");
  assert.equal(unitBool(info, "Service", "X-StopIfChanged", true), true, "unset: the default");
  assert.equal(unitBool(parse("[Service]\nX-StopIfChanged=no\n"), "Service", "X-StopIfChanged", true), false);
});

test("unit files: drop-ins are read in name order after the unit, a template instance's own drop-ins last", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "units-"));
  writeFileSync(path.join(dir, "t@.service"), "[Service]\nExecStart=/bin/t\n");
  mkdirSync(path.join(dir, "t@.service.d"));
  writeFileSync(path.join(dir, "t@.service.d/20-b.conf"), "[Service]\nEnvironment=B\n");
  writeFileSync(path.join(dir, "t@.service.d/10-a.conf"), "[Service]\nEnvironment=A\n");
  writeFileSync(path.join(dir, "t@.service.d/ignored.txt"), "[Service]\nEnvironment=X\n");
  mkdirSync(path.join(dir, "t@x.service.d"));
  writeFileSync(path.join(dir, "t@x.service.d/override.conf"), "[Service]\nExecStart=\nExecStart=/bin/x\n");
  const info = readUnit(path.join(dir, "t@x.service"), path.join(dir, "t@.service"));
  assert.deepEqual(plain(info), { Service: { ExecStart: ["/bin/x"], Environment: ["A", "B"] } });
});

test("compare_units: any change restarts; reload triggers (and a mount's Options) reload; ignored [Unit] keys do nothing", () => {
  const unit = (u: string, s = "ExecStart=/bin/a") => parse(`[Unit]\n${u}\n[Service]\n${s}\n`);
  assert.equal(compareUnits(unit("Description=a"), unit("Description=b")), "equal");
  assert.equal(compareUnits(unit("After=a"), unit("After=b")), "restart");
  assert.equal(compareUnits(unit(""), unit("", "ExecStart=/bin/b")), "restart");
  assert.equal(compareUnits(unit("X-Reload-Triggers=a"), unit("X-Reload-Triggers=b")), "reload");
  assert.equal(compareUnits(unit(""), unit("X-Reload-Triggers=b")), "reload");
  assert.equal(compareUnits(unit("X-Reload-Triggers=a"), unit("X-Reload-Triggers=b", "ExecStart=/bin/b")), "restart");
  assert.equal(compareUnits(parse("[Unit]\nX-Reload-Triggers=x\n"), parse("")), "equal", "a [Unit] of ignored keys only may go");
  assert.equal(compareUnits(parse(""), parse("[Unit]\nX-Reload-Triggers=x\n")), "reload");
  assert.equal(compareUnits(parse("[Other]\n"), parse("")), "restart");
  assert.equal(compareUnits(parse("[Mount]\nOptions=\n"), parse("[Mount]\nOptions=ro\n")), "reload");
  assert.equal(compareUnits(parse("[Mount]\nType=ext4\n"), parse("[Mount]\nType=btrfs\n")), "restart");
});

test("mount unit names are systemd-escape --suffix=mount -p", () => {
  assert.equal(mountUnitName("/"), "-.mount");
  assert.equal(mountUnitName("/nix"), "nix.mount");
  assert.equal(mountUnitName("/var/lib/my-data/"), "var-lib-my\\x2ddata.mount");
  assert.equal(mountUnitName("/srv/.hidden"), "srv-.hidden.mount");
});

test("the plan of two systems' units follows -ng's rules unit by unit, and the preview says it in dry-activate's words", async () => {
  const [before, after] = await Promise.all([
    buildTestSystem({ label: "plan-a", unitFiles: UNIT_SCENARIO.before }),
    buildTestSystem({ label: "plan-b", unitFiles: UNIT_SCENARIO.after }),
  ]);
  const active = bootUnits(before);
  assert.ok(active.has("tmpl@one.service") && active.has("multi-user.target") && !active.has("idle.service"), [...active].join(" "));
  const plan = planUnits(before, after, active);
  const shown = (s: Set<string>) => byName([...s].filter((u) => !plan.hidden.has(u)));
  assert.deepEqual(
    { stop: shown(plan.stop), skip: byName(plan.skip), reload: byName(plan.reload), restart: byName(plan.restart), start: shown(plan.start) },
    { stop: UNIT_SCENARIO_JOBS.stop, skip: UNIT_SCENARIO_JOBS.skip, reload: UNIT_SCENARIO_JOBS.reload, restart: UNIT_SCENARIO_JOBS.restart, start: UNIT_SCENARIO_JOBS.start },
  );
  assert.deepEqual([...plan.hidden], ["multi-user.target"], "active targets are started again, not listed");
  // A unit not active now is left alone, whatever changed in it.
  const quiet = planUnits(before, after, new Set(["multi-user.target", "api.service"]));
  assert.deepEqual(byName(quiet.restart), ["api.service"]);
  assert.equal(quiet.stop.size + quiet.reload.size, 0);

  const lines = unitPlanLines(before, after);
  assert.deepEqual(lines, [
    `would stop the following units: ${UNIT_SCENARIO_JOBS.stop.join(", ")}`,
    "would NOT stop the following changed units: worker.service",
    "would reload the following units: cache.service, db.service",
    "would restart the following units: api.service, batch.timer",
    `would start the following units: ${UNIT_SCENARIO_JOBS.start.join(", ")}`,
    "new units started with their target: new.service",
    "changed units not started at boot (acted on only if active on the host then): idle.service, tmpl@.service",
  ]);
  const changes = await systemChanges(before, after);
  assert.ok(lines.every((l) => changes.includes(l)), changes.join("\n"));
});

test("systems without unit files (or with the same ones) add no unit lines", async () => {
  const [a, b] = await Promise.all([buildTestSystem({ label: "plan-none-a" }), buildTestSystem({ label: "plan-none-b" })]);
  assert.deepEqual(unitPlanLines(a, b), []);
  const c = await buildTestSystem({ label: "plan-same", unitFiles: UNIT_SCENARIO.before });
  const d = await buildTestSystem({ label: "plan-a", unitFiles: UNIT_SCENARIO.before });
  assert.deepEqual(unitPlanLines(c, d), []);
});
