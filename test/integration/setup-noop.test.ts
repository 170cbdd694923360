// `npm run preview`/`up`/`test` run scripts/setup.sh first: once set up, a second run does no
// step's work (no apt, npm ci, ssh2 rebuild or tsc) and costs about a second of CPU; a changed
// TypeScript source is still compiled.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const probe = path.join(ROOT, "bench", `setup-probe-${process.pid}.ts`);
const probeOut = path.join(ROOT, "dist", "bench", `setup-probe-${process.pid}`);
const stamp = path.join(ROOT, "dist", ".build-inputs.sha256");
let stampBeforeProbe: string | undefined;

after(() => {
  rmSync(probe, { force: true });
  for (const ext of [".js", ".js.map", ".d.ts"]) rmSync(probeOut + ext, { force: true });
  // dist/ is again what it was built from before the probe: the next setup need not compile.
  if (stampBeforeProbe !== undefined) writeFileSync(stamp, stampBeforeProbe);
});

/** One setup run: its log lines, wall seconds and CPU seconds (user + sys, children included). */
async function setup(): Promise<{ log: string; wall: number; cpu: number }> {
  const logFile = path.join(ROOT, "dist", `setup-noop-${process.pid}.log`);
  try {
    const { stdout } = await execa("bash", ["-c", 'TIMEFORMAT="%R %U %S"; { time bash scripts/setup.sh >/dev/null 2>"$0"; } 2>&1', logFile], { cwd: ROOT });
    const times = stdout.trim().split("\n").pop()!.split(" ").map(Number);
    assert.equal(times.length, 3, `time output: ${stdout}`);
    return { log: readFileSync(logFile, "utf8"), wall: times[0]!, cpu: times[1]! + times[2]! };
  } finally {
    rmSync(logFile, { force: true });
  }
}

test("a second setup run does nothing and a changed source is still compiled", { timeout: 600_000 }, async () => {
  await setup(); // brings the tree up to date, whatever ran before
  const again = await setup();
  assert.deepEqual(again.log.trim().split("\n"), ["[setup] tsc: dist/ is up to date"], `a no-op setup ran a step:\n${again.log}`);
  // Measured on the 2-core development machine: 0.5 s user + 0.5 s sys, 3 s wall under a load
  // average of 14. CPU time does not grow with other processes' load; wall time is bounded
  // generously only so a step that blocks (a lock, the network) shows.
  assert.ok(again.cpu <= 2, `a no-op setup took ${again.cpu} s of CPU (bound 2 s): ${JSON.stringify(again)}`);
  assert.ok(again.wall <= 20, `a no-op setup took ${again.wall} s (bound 20 s)`);

  stampBeforeProbe = readFileSync(stamp, "utf8");
  writeFileSync(probe, `export const probe = ${process.pid};\n`);
  const changed = await setup();
  assert.match(changed.log, /^\[setup\] tsc$/m);
  assert.ok(existsSync(`${probeOut}.js`), "the new source was compiled");
  assert.match(readFileSync(`${probeOut}.js`, "utf8"), new RegExp(`probe = ${process.pid}`));
});
