// Everything the harness creates is recorded under one run directory per test process, so
// teardown and the sweeper touch only what this harness made.
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";

// Not under /tmp, /run, /root, /etc, /mnt or /boot: each host mounts its own over those.
export const HARNESS_ROOT = "/var/lib/nixos-pulumi-test-hosts";

let runDir: string | undefined;

export function currentRunDir(): string {
  if (!runDir) {
    runDir = path.join(HARNESS_ROOT, `run-${process.pid}-${Date.now()}`);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path.join(runDir, "owner.pid"), String(process.pid));
    const dir = runDir;
    // Hosts and VMs are separate process trees: end them with the test process, however it ends.
    process.once("exit", () => cleanupRun(dir));
    // Interrupted (Ctrl-C, a runner's timeout): clean up, then die of the same signal.
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      process.once(signal, () => {
        cleanupRun(dir);
        process.kill(process.pid, signal);
      });
    }
  }
  return runDir;
}

/** Appends a line ("pid 123", "vm 456", "loop /dev/loop4 <file>") to the run's record. */
export function record(line: string): void {
  appendFileSync(path.join(currentRunDir(), "created"), line + "\n");
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/**
 * Kills the recorded host inits and VMs (only if the pid still runs what we started),
 * detaches the recorded loop devices (only if still backed by our file), removes the dir.
 * Synchronous, so it can run in an exit handler. Returns what it removed.
 */
export function cleanupRun(dir: string): string[] {
  const removed: string[] = [];
  const file = path.join(dir, "created");
  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").map((l) => l.split(" ")) : [];
  for (const [kind, pid] of lines) {
    const marker = kind === "pid" ? "host-init.sh" : kind === "vm" ? "qemu-system" : undefined;
    if (marker && pid && cmdline(Number(pid)).includes(marker)) {
      process.kill(Number(pid), "SIGKILL");
      removed.push(`${kind} ${pid}`);
    }
  }
  for (const [kind, loop, backing] of lines) {
    if (kind !== "loop" || !loop || !backing) continue;
    let current = "";
    try {
      current = execFileSync("losetup", ["--noheadings", "--output", "BACK-FILE", loop], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      continue;
    }
    if (current === backing) {
      swapOffLoop(loop);
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          execFileSync("losetup", ["-d", loop], { stdio: "ignore" });
          removed.push(`loop ${loop}`);
          break;
        } catch {
          execFileSync("sleep", ["0.1"]);
        }
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return removed;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error("tests need root: test hosts use mount/PID namespaces, loop devices and sshd on loopback. Run as root (CI does).");
  }
}

/**
 * Swap is the machine's, not a test host's: a swap a host turned on outlives its namespace,
 * and on a loop device it keeps the device (and its partition numbers) from ever going away,
 * so later hosts meet it (mkswap: "is mounted"). Turns off every swap on the loop device and
 * its partitions, through nodes made here (the host's /dev is gone with it).
 */
export function swapOffLoop(loop: string): void {
  const name = path.basename(loop);
  const sys = `/sys/class/block/${name}`;
  if (!existsSync(sys)) return;
  const devs = [`${sys}/dev`, ...readdirSync(sys).filter((p) => p.startsWith(`${name}p`)).map((p) => `${sys}/${p}/dev`)];
  const dir = mkdtempSync("/tmp/nixos-pulumi-swapoff-");
  try {
    devs.forEach((file, i) => {
      const [major, minor] = readFileSync(file, "utf8").trim().split(":");
      const node = `${dir}/${i}`;
      try {
        execFileSync("mknod", [node, "b", major!, minor!], { stdio: "ignore" });
        execFileSync("swapoff", [node], { stdio: "ignore" });
      } catch {
        // not a swap (the usual case), or gone meanwhile
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
