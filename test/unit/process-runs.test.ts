// A deploy lock's holder is "still running" only while its process really runs: a killed
// deployer that is a zombie (not yet reaped) does not hold the next `pulumi up` for a lease.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { processRuns } from "../../provider/util/process-runs";

const state = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
};

test("a process that runs runs; one that exited and was reaped does not; a zombie does not", async () => {
  assert.equal(processRuns(process.pid), true);
  // A shell starts `true` in the background and becomes `sleep`, which never waits for it: once
  // `true` exits it stays a zombie for as long as its parent lives.
  const parent = spawn("sh", ["-c", "true & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    const child = await new Promise<number>((resolve) => parent.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
    for (let i = 0; i < 100 && state(child) !== "Z"; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(state(child), "Z", "the test's child is a zombie");
    assert.equal(processRuns(child), false, "a zombie is not a running process");
    assert.equal(processRuns(parent.pid!), true, "its parent runs");
  } finally {
    parent.kill("SIGKILL");
  }
  await new Promise((resolve) => parent.once("exit", resolve));
  assert.equal(processRuns(parent.pid!), false, "a process that exited and was reaped does not run");
});
