// Everything the harness creates is recorded under one run directory per test process, so
// teardown and the sweeper touch only what this harness made.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";

// Not under /tmp, /run, /root, /etc, /mnt or /boot: each host mounts its own over those.
export const HARNESS_ROOT = "/var/lib/nixos-pulumi-test-hosts";

let runDir: string | undefined;

export function currentRunDir(): string {
  if (!runDir) {
    runDir = path.join(HARNESS_ROOT, `run-${process.pid}-${Date.now()}`);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path.join(runDir, "owner.pid"), String(process.pid));
  }
  return runDir;
}

/** Appends a line ("pid 123", "loop /dev/loop4") to the run's record of what it created. */
export function record(line: string): void {
  appendFileSync(path.join(currentRunDir(), "created"), line + "\n");
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error("tests need root: test hosts use mount/PID namespaces, loop devices and sshd on loopback. Run as root (CI does).");
  }
}
