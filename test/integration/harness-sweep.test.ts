// The sweeper: a test process that dies without cleaning up (SIGKILL) leaves a host with a
// disk running; sweepLeftovers() removes exactly that (process tree, loop device, run dir)
// and leaves the runs of live test processes alone.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { sweepLeftovers } from "../harness/sweep";
import { startHost } from "../harness/hosts";

const HOSTS_JS = path.resolve(__dirname, "../harness/hosts.js");

/** Starts a host with a mounted disk in a child node process and SIGKILLs that process. */
async function crashedRun(): Promise<{ initPid: number; loop: string; stateDir: string; address: string }> {
  const code = `
    const { startHost } = require(${JSON.stringify(HOSTS_JS)});
    startHost({ name: "crash", state: "installer", disks: [{ name: "vda", sizeMiB: 32 }] }).then(async (h) => {
      await h.run("mkfs.ext4 -q /dev/vda && mount /dev/vda /mnt");
      console.log(JSON.stringify({ initPid: h.initPid, loop: h.loopDevices.vda, stateDir: h.stateDir, address: h.address }));
      setInterval(() => {}, 1000);
    });`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.trim());
    });
    child.on("exit", (c) => reject(new Error(`the crashing test process exited early (${c})`)));
  });
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  return JSON.parse(line);
}

test("the sweeper removes what a killed test process left behind, and nothing of live runs", async () => {
  const live = await startHost({ name: "alive", state: "rescue" });
  try {
    const left = await crashedRun();
    process.kill(left.initPid, 0); // still there: nobody cleaned up
    assert.match((await execa("losetup", ["-a"])).stdout, new RegExp(`${left.loop}:`));

    const removed = sweepLeftovers();
    assert.ok(removed.includes(`pid ${left.initPid}`), removed.join(", "));
    assert.ok(removed.includes(`loop ${left.loop}`), removed.join(", "));
    await new Promise((r) => setTimeout(r, 200));
    assert.throws(() => process.kill(left.initPid, 0), "the crashed host's init is gone");
    assert.ok(!(await execa("losetup", ["-a"])).stdout.includes(`${left.loop}:`), "its loop device is detached");
    assert.ok(!existsSync(left.stateDir), "its state is removed");
    assert.ok(!readFileSync("/proc/mounts", "utf8").includes(left.stateDir));
    assert.equal((await execa("pgrep", ["-f", left.stateDir], { reject: false })).stdout.trim(), "", "no sshd of it left");

    // This (live) process's host is untouched.
    assert.equal((await live.run("hostname")).trim(), "alive");
  } finally {
    await live.stop();
  }
});
