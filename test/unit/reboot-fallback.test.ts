// The reboot command's `reboot -f` fallback runs only when the clean `reboot` did not take
// the machine down. Run here in a shell whose PATH holds only sleep, sync and a recording
// `reboot` double (never the real one): "clean" ends the caller as a real clean reboot ends
// every process; "ignored" returns and leaves the machine up, as an init without a handler
// for busybox's SIGTERM did; "failed" exits 1, as systemctl does when PID 1 is unreachable.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { rebootCommand } from "../../provider/switch/reboot";

async function rebootCalls(behaviour: "clean" | "ignored" | "failed"): Promise<string[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "reboot-fallback-"));
  try {
    const bin = path.join(dir, "bin");
    const log = path.join(dir, "calls");
    execFileSync("mkdir", [bin]);
    for (const tool of ["sleep", "sync"]) symlinkSync(execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(), path.join(bin, tool));
    const onClean = behaviour === "clean" ? 'kill -TERM "$PPID"' : behaviour === "failed" ? "exit 1" : ":";
    writeFileSync(path.join(bin, "reboot"), `#!/bin/sh\necho "reboot $*" >> ${log}\n[ "$1" = -f ] && exit 0\n${onClean}\n`, { mode: 0o755 });
    accessSync(path.join(bin, "reboot"), constants.X_OK);
    execFileSync("/bin/sh", ["-c", rebootCommand({ delaySeconds: 0.1, forceAfterSeconds: 0.5 })], { env: { PATH: bin } });
    await new Promise((r) => setTimeout(r, 1500));
    return readFileSync(log, "utf8").trim().split("\n").map((l) => l.trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a clean reboot that takes the machine down is not followed by reboot -f", async () => {
  assert.deepEqual(await rebootCalls("clean"), ["reboot"]);
});

test("reboot -f follows when the machine is still up after the clean reboot (ignored or failed)", async () => {
  assert.deepEqual(await rebootCalls("ignored"), ["reboot", "reboot -f"]);
  assert.deepEqual(await rebootCalls("failed"), ["reboot", "reboot -f"]);
});

