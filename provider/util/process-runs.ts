// Whether a process of this machine still runs, for a deploy lock left by a killed deployer.
import { readFileSync } from "node:fs";

/**
 * True while `pid` runs. A zombie does not: a deployer SIGKILLed together with its parent
 * (the Pulumi CLI) stays one until init reaps it, about a second and a half on a machine
 * whose init reaps periodically, for good in a container whose PID 1 never reaps, and the
 * next `pulumi up` would wait out its lock's lease for a process that is gone.
 */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return !isZombie(pid);
}

/** /proc/<pid>/stat's state is Z (where there is no /proc, as on macOS, nothing is a zombie). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state follows the command name, which is in parentheses and may hold any character.
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}
