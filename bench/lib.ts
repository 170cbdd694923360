// Shared bits of the benchmarks: timing, alternating sides, the OpenSSH baseline's options,
// result tables, and the result file each run writes (bench/results/<name>.json).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TestHost } from "../test/harness/hosts";

export async function timed<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await run();
  return { seconds: (performance.now() - started) / 1000, value };
}

/** NIX_SSHOPTS for the OpenSSH baseline: the test key and a pinned known_hosts file (`via`: a proxy in front). */
export function opensshOptions(host: TestHost, via?: { address: string; port: number }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-ssh-"));
  const knownHosts = path.join(dir, "known_hosts");
  const name = via ? `[${via.address}]:${via.port}` : host.address;
  writeFileSync(knownHosts, `${name} ${host.hostPublicKey}\n`);
  return `-i ${host.clientPrivateKeyPath} -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes${via ? ` -p ${via.port}` : ""}`;
}

export function table(rows: (string | number)[][]): string {
  return rows.map((r) => r.join(" | ")).join("\n");
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "median (min–max)" of samples, for tables that show the spread. */
export function summary(values: number[], digits = 2): string {
  return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
}

/** The samples of one side, with their median and spread. */
export interface Figure {
  samples: number[];
  median: number;
  min: number;
  max: number;
}

export function figure(samples: number[]): Figure {
  return { samples, median: median(samples), min: Math.min(...samples), max: Math.max(...samples) };
}

/**
 * `repeat` rounds of every side, the order reversed every other round, so neither side always
 * runs first (a warm page cache or a quieter machine favours whoever follows).
 */
export async function alternating<K extends string>(repeat: number, sides: Record<K, () => Promise<number>>): Promise<Record<K, number[]>> {
  const names = Object.keys(sides) as K[];
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let rep = 0; rep < repeat; rep++) {
    for (const name of rep % 2 === 0 ? names : [...names].reverse()) samples[name].push(await sides[name]());
  }
  return samples;
}

export const REPO = path.resolve(__dirname, "../..");
const RESULTS_DIR = path.join(REPO, "bench/results");

/** A benchmark run: when it started and the machine's load then, sampled until it ends. */
export interface BenchRun {
  name: string;
  started: Date;
  loadBefore: number[];
  loadSamples: number[];
  timer: NodeJS.Timeout;
}

export function startRun(name: string): BenchRun {
  const loadSamples: number[] = [];
  const timer = setInterval(() => loadSamples.push(os.loadavg()[0]!), 10_000);
  timer.unref();
  return { name, started: new Date(), loadBefore: os.loadavg(), loadSamples, timer };
}

function git(...args: string[]): string | undefined {
  try {
    return execFileSync("git", ["-C", REPO, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Writes bench/results/<name>.json: the figures with the commit measured (and whether the
 * checkout had uncommitted changes), the dates, the cores, and the load average before, during
 * (1-minute, every 10 s; the benchmark's own processes count there) and after. "underLoad":
 * the 1-minute load before the run, all of it other work, exceeded half the cores.
 */
export function writeResult(run: BenchRun, figures: Record<string, unknown>): string {
  clearInterval(run.timer);
  const loadAfter = os.loadavg();
  const cores = os.cpus().length;
  const result = {
    benchmark: run.name,
    commit: git("rev-parse", "HEAD") ?? "unknown (not a git checkout)",
    uncommittedChanges: (git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results") ?? "") !== "",
    started: run.started.toISOString(),
    finished: new Date().toISOString(),
    cores,
    loadBefore: run.loadBefore.map((l) => Number(l.toFixed(2))),
    loadDuring: { max: Number(Math.max(...run.loadSamples, 0).toFixed(2)), median: run.loadSamples.length ? Number(median(run.loadSamples).toFixed(2)) : null },
    loadAfter: loadAfter.map((l) => Number(l.toFixed(2))),
    underLoad: run.loadBefore[0]! > cores / 2,
    figures,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${run.name}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  console.log(`${result.underLoad ? "UNDER LOAD: " : ""}load before ${result.loadBefore.join(" ")}, during max ${result.loadDuring.max}, after ${result.loadAfter.join(" ")}; commit ${result.commit.slice(0, 12)}${result.uncommittedChanges ? " (with uncommitted changes)" : ""}; written to ${path.relative(REPO, file)}`);
  return file;
}

/**
 * CPU seconds so far: `children`, of this process's waited-for descendants (a `pulumi` run
 * and everything it started: engine, program, provider, local nix; not the test hosts' sshd
 * and what runs there), and `machine`, of every process on the machine (/proc/stat).
 */
export function cpuSeconds(): { children: number; machine: number } {
  const tick = 100; // USER_HZ
  const self = readFileSync("/proc/self/stat", "utf8");
  const fields = self.slice(self.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 (cutime, cstime), counted from 1 with pid and comm before ")".
  const children = (Number(fields[13]) + Number(fields[14])) / tick;
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const machine = (cpu.slice(0, 8).reduce((a, b) => a + b, 0) - cpu[3]! - cpu[4]!) / tick;
  return { children, machine };
}
