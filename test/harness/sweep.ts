// Removes what crashed test runs left behind (host processes, VMs, loop devices, run
// directories), touching only what a harness run recorded, and only runs whose owner
// process is gone. `node dist/test/harness/sweep.js` runs it by hand; scripts/test.sh first.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { cleanupRun, HARNESS_ROOT } from "./run-dir";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sweepLeftovers(): string[] {
  if (!existsSync(HARNESS_ROOT)) return [];
  const removed: string[] = [];
  for (const run of readdirSync(HARNESS_ROOT)) {
    const dir = path.join(HARNESS_ROOT, run);
    const ownerFile = path.join(dir, "owner.pid");
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, "utf8").trim() || 0) : 0;
    if (owner && alive(owner)) continue; // a live test process (maybe this one) owns it
    removed.push(...cleanupRun(dir), `run ${run}`);
  }
  return removed;
}

if (require.main === module) {
  const removed = sweepLeftovers();
  console.log(removed.length ? `swept: ${removed.join(", ")}` : "nothing to sweep");
}
