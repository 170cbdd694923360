// CPU seconds of the processes on each end of a copy, from /proc/<pid>/stat: a process's own
// user+system time plus that of its children it has waited for (cutime, cstime). A child
// reaped by its parent adds its whole tree's time there, so after a copy's processes have
// exited, the deltas of two long-lived processes cover everything: this benchmark process
// (the deployer: ours in process, our copy child and its nix-store, or nix-copy-closure's nix
// and ssh, or tar and ssh) and a test host's listening sshd (the target: sshd's per-connection
// processes and the commands they ran, nix-store --serve --write or tar).
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import type { TestHost } from "../test/harness/hosts";

const TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

function statFields(pid: number | "self"): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // After the command name (in parentheses, which may hold spaces): field 3 (state) onwards.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** utime + stime + cutime + cstime of a process, in seconds. */
export function treeCpuSeconds(pid: number | "self"): number {
  const f = statFields(pid);
  // utime is field 14 of stat: index 11 counted from field 3.
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS;
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

/** The host's listening sshd (a child of its init). */
export function hostSshdPid(host: TestHost): number {
  const pid = children(host.initPid).find((p) => command(p) === "sshd");
  if (!pid) throw new Error(`${host.name}: no sshd under its init ${host.initPid}`);
  return pid;
}

/** Waits until the listening sshd has no connection processes left (they were reaped). */
export async function sshdIdle(sshd: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (children(sshd).length > 0) {
    if (Date.now() > deadline) throw new Error(`sshd ${sshd} still has connection processes ${children(sshd).join(" ")}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface SideCpu {
  deployer: number;
  target: number;
}

/** CPU seconds on both ends while `run` ran, once the target's connections were gone. */
export async function measureCpu<T>(host: TestHost, run: () => Promise<T>): Promise<{ value: T; cpu: SideCpu }> {
  const sshd = hostSshdPid(host);
  await sshdIdle(sshd);
  const before = { deployer: treeCpuSeconds("self"), target: treeCpuSeconds(sshd) };
  const value = await run();
  await sshdIdle(sshd);
  return { value, cpu: { deployer: treeCpuSeconds("self") - before.deployer, target: treeCpuSeconds(sshd) - before.target } };
}
