// CPU seconds of the processes on each end of a copy, counted by cgroup v2 (`cpu.stat`'s
// usage_usec): for the deployer, a group holding this benchmark process and so everything it
// starts (ours in process, our copy child and its nix-store, or nix-copy-closure's nix and ssh,
// or tar and ssh); for the target, a group holding every process of the test host, and so
// every sshd connection and the commands it ran (nix-store --serve --write, or tar).
//
// A group counts a process's CPU whoever reaps it. Summing /proc/<pid>/stat's cutime of the
// host's sshd, as this file did before, missed a command whose connection ended first: it is
// reparented to the host's init. nix-copy-closure's target-side nix-store is such a command,
// and its side's target CPU came out at an eighth of the real figure.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { TestHost } from "../test/harness/hosts";

/** Where this process's cgroup v2 group is, as a directory (hybrid hosts mount v2 apart). */
function ownGroupDir(): string {
  const mount = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .find((f) => f[2] === "cgroup2")?.[1];
  const own = readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"))?.slice(3);
  if (!mount || own === undefined) throw new Error("the CPU figures need a cgroup v2 hierarchy (none is mounted): run the benchmark on a machine with one");
  return path.join(mount, own);
}

function pidsOf(dir: string): number[] {
  return readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
}

function moveTo(dir: string, pid: number): void {
  try {
    writeFileSync(path.join(dir, "cgroup.procs"), `${pid}\n`);
  } catch (e) {
    // A process that exited meanwhile cannot be moved, and need not be.
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
  }
}

/** A cgroup of its own under this process's: every process moved in, and all it starts, counted. */
class CpuGroup {
  readonly dir: string;
  constructor(
    private readonly parent: string,
    name: string,
  ) {
    this.dir = path.join(parent, name);
    mkdirSync(this.dir);
  }
  add(pids: number[]): void {
    for (const pid of pids) moveTo(this.dir, pid);
  }
  pids(): number[] {
    return pidsOf(this.dir);
  }
  seconds(): number {
    const line = readFileSync(path.join(this.dir, "cpu.stat"), "utf8").split("\n").find((l) => l.startsWith("usage_usec "));
    return Number(line!.split(" ")[1]) / 1e6;
  }
  /** Moves what still runs back to the parent group and removes this one. */
  close(): void {
    for (let i = 0; i < 10 && this.pids().length > 0; i++) for (const pid of this.pids()) moveTo(this.parent, pid);
    rmdirSync(this.dir);
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function command(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** The host's init and all its descendants. */
function hostProcesses(host: TestHost): number[] {
  const all: number[] = [];
  const visit = (pid: number) => {
    all.push(pid);
    children(pid).forEach(visit);
  };
  visit(host.initPid);
  return all;
}

/** The host's processes that are not idle: anything but its init, its listening sshd and init's `sleep`. */
function hostBusy(host: TestHost): number[] {
  const idle = new Set([host.initPid, ...children(host.initPid).filter((p) => command(p) === "sshd" || command(p) === "sleep")]);
  return hostProcesses(host).filter((p) => !idle.has(p));
}

/** Waits until `busy` returns nothing: the copy's processes have all ended. */
async function settled(what: string, busy: () => number[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (busy().length > 0) {
    if (Date.now() > deadline) throw new Error(`${what}: processes still running after the copy: ${busy().join(" ")}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface SideCpu {
  deployer: number;
  target: number;
}

/** CPU seconds on both ends while `run` ran, once the processes it started on either end ended. */
export async function measureCpu<T>(host: TestHost, run: () => Promise<T>): Promise<{ value: T; cpu: SideCpu }> {
  const parent = ownGroupDir();
  const tag = `nixos-pulumi-bench-${process.pid}`;
  const deployer = new CpuGroup(parent, `${tag}-deployer`);
  let target: CpuGroup | undefined;
  try {
    target = new CpuGroup(parent, `${tag}-target`);
    await settled(host.name, () => hostBusy(host));
    target.add(hostProcesses(host));
    deployer.add([process.pid]);
    const before = { deployer: deployer.seconds(), target: target.seconds() };
    const value = await run();
    await settled(host.name, () => hostBusy(host));
    await settled("this benchmark", () => deployer.pids().filter((p) => p !== process.pid));
    return { value, cpu: { deployer: deployer.seconds() - before.deployer, target: target.seconds() - before.target } };
  } finally {
    deployer.close();
    target?.close();
  }
}
