// Benchmark (not a test): a fleet of 20 hosts with the real Pulumi CLI, each figure a ratio
// against a baseline measured in the same run, repeats interleaved (alternating which side
// goes first), printed with median, min and max.
//   preview: no-op `pulumi preview` of 20 NixosHosts (each its own system.expression) vs a
//            program of 20 trivial dynamic resources that instantiates the same 20 toplevels
//            with the provider's concurrency (one nix process per core, the hosts split
//            between them, as provider/nix/batch-evaluation.ts); with instant evaluations
//            and with ~0.5 s per host.
//   switch:  `pulumi up` switching 20 hosts to new systems vs switching one host, ~0.5 s
//            evaluations.
//   cache:   20 hosts switched to a new closure fed from a binary cache vs fed by the
//            deployer over SSH: bytes the deployer sends, and wall time.
// Each `pulumi` run is a fresh program process (a local project, not an inline program), as
// for a user. Run (as root, under the heavy lock):
//   flock /tmp/nixos-pulumi-heavy.lock node dist/bench/fleet.js [preview] [switch] [cache]
// BENCH_REPEAT (default 5), BENCH_HOSTS (default 20). Results: bench/results/fleet-<phase>.json.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { switchHost } from "../provider/host/operations";
import { nixosHostSchema } from "../provider/schema/nixos-host";
import { startHosts, type TestHost } from "../test/harness/hosts";
import { SYSTEM_NIX } from "../test/harness/systems";
import { PULUMI_ENV } from "../test/harness/pulumi";
import { generateCacheKey, startBinaryCacheServer } from "../test/harness/binary-cache";
import * as os from "node:os";
import { alternating, cpuSeconds, figure, median, REPO, startRun, summary, table, timed, writeResult, type BenchRun } from "./lib";
import { tracing } from "./trace";

const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 5);
const HOSTS = Number(process.env["BENCH_HOSTS"] ?? 20);
const SLOW_NIX = path.join(REPO, "test/fixtures/slow-eval-system.nix");
const run = `${process.pid}`;

let results: Record<string, unknown> = {};

// The program every stack runs: NixosHosts, or the baseline's trivial resources plus one nix
// process. It reads fleet.json from its work directory.
const PROGRAM = `
const fs = require("fs");
const pulumi = require("@pulumi/pulumi");
const cfg = JSON.parse(fs.readFileSync(__dirname + "/fleet.json", "utf8"));
const system = (label) => ({ expression: { file: cfg.file, args: cfg.work ? { label, work: cfg.work } : { label } } });
if (cfg.kind === "hosts") {
  const { NixosHost } = require("nixos-pulumi");
  cfg.hosts.forEach((h, i) => new NixosHost("h" + i, {
    connection: { host: h.address, privateKey: fs.readFileSync(cfg.keyFile, "utf8"), hostKey: h.hostKey },
    system: system(h.label),
  }));
} else {
  // The provider's concurrency: one nix process per core, the hosts split between them.
  const { execFile } = require("child_process");
  const exprs = cfg.hosts.map((h) => "(import " + cfg.file + " { label = " + JSON.stringify(h.label) + (cfg.work ? "; work = " + cfg.work : "") + "; })");
  const n = Math.max(1, Math.min(require("os").availableParallelism(), exprs.length));
  const chunks = Array.from({ length: n }, (_, c) => exprs.filter((_, i) => i % n === c));
  const instantiate = (list) => new Promise((resolve, reject) => execFile("nix-instantiate", ["-E", "[ " + list.join(" ") + " ]"], (err) => (err ? reject(err) : resolve())));
  const provider = {
    async check(olds, news) { return { inputs: news }; },
    async diff(id, olds, news) { return { changes: olds.label !== news.label }; },
    async create(inputs) { return { id: inputs.label, outs: inputs }; },
    async update(id, olds, news) { return { outs: news }; },
  };
  module.exports = async () => {
    await Promise.all(chunks.map(instantiate));
    cfg.hosts.forEach((h, i) => new pulumi.dynamic.Resource(provider, "t" + i, { label: h.label }));
  };
}
`;

interface FleetConfig {
  kind: "hosts" | "trivial";
  file: string;
  work: number;
  keyFile: string;
  hosts: { address: string; hostKey: string; label: string }[];
}

interface BenchStack {
  stack: Stack;
  configure(config: FleetConfig): void;
}

async function benchStack(name: string): Promise<BenchStack> {
  // Inside the clone, so the program's require("nixos-pulumi") finds the package.
  const workRoot = path.join(REPO, "test", ".work");
  mkdirSync(workRoot, { recursive: true });
  const workDir = mkdtempSync(path.join(workRoot, `bench-${name}-`));
  mkdirSync(path.join(workDir, "state"));
  writeFileSync(path.join(workDir, "index.js"), PROGRAM);
  const projectName = `bench-${name}`;
  writeFileSync(path.join(workDir, "Pulumi.yaml"), `name: ${projectName}\nruntime: nodejs\nmain: index.js\nbackend:\n  url: file://${workDir}/state\n`);
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: "bench", workDir },
    { envVars: { ...PULUMI_ENV, PULUMI_BACKEND_URL: `file://${workDir}/state`, PULUMI_HOME: path.join(workDir, "home") }, secretsProvider: "passphrase" },
  );
  return { stack, configure: (config) => writeFileSync(path.join(workDir, "fleet.json"), JSON.stringify(config)) };
}

async function up(s: BenchStack, transcript?: string): Promise<void> {
  let out = "";
  const started = performance.now();
  // BENCH_TRACE: each line of the engine's output with the seconds since the run started.
  const stamped: string[] = [];
  const onOutput = (t: string) => {
    out += t;
    if (transcript) for (const line of t.split("\n")) if (line.trim()) stamped.push(`${((performance.now() - started) / 1000).toFixed(2).padStart(6)} ${line}`);
  };
  try {
    await s.stack.up({ color: "never", onOutput });
  } catch (err) {
    throw new Error(`pulumi up failed: ${(err as Error).message}\n${out}`);
  } finally {
    if (transcript) writeFileSync(transcript, stamped.join("\n") + "\n");
  }
}

async function noopPreview(s: BenchStack): Promise<number> {
  const { seconds, value } = await timed(() => s.stack.preview({ color: "never" }));
  const changes = Object.entries(value.changeSummary).filter(([op, n]) => op !== "same" && n);
  if (changes.length > 0) throw new Error(`the preview was not a no-op: ${JSON.stringify(value.changeSummary)}\n${value.stdout}`);
  return seconds;
}

/** `work` for ~0.5 s of evaluation per host on this machine, measured on one nix process. */
async function calibrate(): Promise<{ work: number; seconds: number }> {
  const time = async (work: number) => (await timed(() => execa("nix-instantiate", ["--eval", SLOW_NIX, "-A", "outPath", "--arg", "work", String(work)]))).seconds;
  const probe = 1_000_000;
  const base = median([await time(0), await time(0), await time(0)]);
  const perMillion = median([await time(probe), await time(probe), await time(probe)]) - base;
  let work = Math.round((0.5 / perMillion) * probe);
  // One correction step: the cost is not quite linear in `work` (memory grows with it).
  const first = median([await time(work), await time(work), await time(work)]);
  work = Math.round(work * (0.5 / first));
  return { work, seconds: median([await time(work), await time(work), await time(work)]) };
}

/** CPU seconds of realising one new system's .drv (what each switched host's `build` step costs the deployer), 3 samples. */
async function buildCpu(): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const drv = (await execa("nix-instantiate", [SYSTEM_NIX, "--argstr", "label", `fleet-build-cpu-${run}-${i}`])).stdout.trim();
    const before = cpuSeconds().children;
    await execa("nix-store", ["--realise", drv]);
    samples.push(cpuSeconds().children - before);
  }
  return samples;
}

async function interleaved(a: () => Promise<number>, b: () => Promise<number>): Promise<{ a: number[]; b: number[] }> {
  return alternating(REPEAT, { a, b });
}

function report(title: string, aName: string, bName: string, r: { a: number[]; b: number[] }, unit = "s"): Record<string, unknown> {
  const a = figure(r.a);
  const b = figure(r.b);
  const ratios = r.a.map((x, i) => x / r.b[i]!);
  const ratio = figure(ratios);
  const f = (x: number) => (unit === "s" ? x.toFixed(2) : x.toFixed(0));
  console.log(`\n${title}`);
  console.log(
    table([
      ["", "median", "min", "max"],
      ["---", "---", "---", "---"],
      [`${aName} (${unit})`, f(a.median), f(a.min), f(a.max)],
      [`${bName} (${unit})`, f(b.median), f(b.min), f(b.max)],
      ["ratio (per repeat)", ratio.median.toFixed(2), ratio.min.toFixed(2), ratio.max.toFixed(2)],
    ]),
  );
  return { [aName]: a, [bName]: b, ratio };
}

async function main() {
  const phases = process.argv.slice(2);
  const want = (p: string) => phases.length === 0 || phases.includes(p);
  const needStacks = want("preview") || want("switch");
  const runs: Record<string, BenchRun> = {};
  const finish = (phase: string) => {
    writeResult(runs[phase]!, { repeat: REPEAT, hosts: HOSTS, ...results });
    results = {};
  };
  const v1 = (await execa("nix-build", ["--no-out-link", SYSTEM_NIX, "--argstr", "label", `fleet-v1-${run}`])).stdout.trim();
  const hosts = await startHosts(HOSTS + 1, { name: "fleet", state: "nixos", system: v1 });
  try {
    const fleet = hosts.slice(0, HOSTS);
    const single = hosts[HOSTS]!;
    const keyFile = fleet[0]!.clientPrivateKeyPath;
    const hostEntries = (list: TestHost[], label: (i: number) => string) =>
      list.map((h, i) => ({ address: h.address, hostKey: h.hostPublicKey, label: label(i) }));

    if (needStacks) {
      if (want("preview")) runs["fleet-preview"] = startRun("fleet-preview");
      const { work, seconds: evalSeconds } = await calibrate();
      console.log(`slow evaluation: work=${work}, one host's evaluation takes ${evalSeconds.toFixed(2)} s (target 0.5 s)`);
      const slowEvaluation = { work, seconds: evalSeconds, buildCpuSeconds: await buildCpu() };
      console.log(`building one host's new system (nix-store --realise of its .drv): ${summary(slowEvaluation.buildCpuSeconds)} CPU seconds`);
      const ours = await benchStack("hosts");
      const base = await benchStack("trivial");
      const one = await benchStack("one");

      if (want("preview")) {
        for (const variant of [{ name: "instant", file: SYSTEM_NIX, w: 0 }, { name: "slow", file: SLOW_NIX, w: work }]) {
          const labels = (i: number) => `fleet-p-${variant.name}-${run}-${i}`;
          ours.configure({ kind: "hosts", file: variant.file, work: variant.w, keyFile, hosts: hostEntries(fleet, labels) });
          base.configure({ kind: "trivial", file: variant.file, work: variant.w, keyFile, hosts: hostEntries(fleet, labels) });
          await up(ours);
          await up(base);
          const r = await interleaved(() => noopPreview(ours), () => noopPreview(base));
          results[`preview-${variant.name}`] = report(
            `no-op pulumi preview, ${HOSTS} hosts, ${variant.name} evaluation`,
            `${HOSTS} NixosHosts`, `${HOSTS} trivial resources + nix, one process per core`, r);
        }
        results["slowEvaluation"] = slowEvaluation;
        finish("fleet-preview");
      }

      if (want("switch")) {
        // Its load before includes the preview phase's when both run: run them apart for that figure.
        runs["fleet-switch"] = startRun("fleet-switch");
        let version = 0;
        const switchCpu: Record<number, { deployer: number; machine: number }[]> = {};
        const switchTo = async (s: BenchStack, list: TestHost[]) => {
          const v = version++;
          const labels = (i: number) => `fleet-s-${run}-${v}-${i}`;
          s.configure({ kind: "hosts", file: SLOW_NIX, work, keyFile, hosts: hostEntries(list, labels) });
          const cpuBefore = cpuSeconds();
          const { seconds } = await timed(() => up(s, tracing ? `/tmp/fleet-switch-${list.length}-${v}.log` : undefined));
          const cpuAfter = cpuSeconds();
          const cpu = { deployer: cpuAfter.children - cpuBefore.children, machine: cpuAfter.machine - cpuBefore.machine };
          (switchCpu[list.length] ??= []).push(cpu);
          console.error(`switch of ${list.length} host(s): ${seconds.toFixed(2)} s; CPU: deployer's processes ${cpu.deployer.toFixed(2)} s, whole machine ${cpu.machine.toFixed(2)} s (load ${os.loadavg()[0]!.toFixed(2)})`);
          const expect = (await execa("nix-instantiate", ["--eval", "--json", SLOW_NIX, "-A", "outPath", "--argstr", "label", labels(list.length - 1)])).stdout;
          const current = (await list[list.length - 1]!.run("readlink /run/current-system")).trim();
          if (JSON.stringify(current) !== expect) throw new Error(`host did not switch: runs ${current}, expected ${expect}`);
          return seconds;
        };
        // Adopt both first so every measured up is a switch.
        ours.configure({ kind: "hosts", file: SLOW_NIX, work, keyFile, hosts: hostEntries(fleet, (i) => `fleet-s-${run}-init-${i}`) });
        one.configure({ kind: "hosts", file: SLOW_NIX, work, keyFile, hosts: hostEntries([single], () => `fleet-s-${run}-init-one`) });
        await up(ours);
        await up(one);
        const r = await interleaved(() => switchTo(ours, fleet), () => switchTo(one, [single]));
        results["switch-slow"] = report(`pulumi up switching to new systems, ~${evalSeconds.toFixed(2)} s evaluation each`, `${HOSTS} hosts`, "1 host", r);
        // CPU seconds per up: the deployer's processes (pulumi, program, provider, local nix) and the whole machine's (test hosts included, and any other work).
        results["switch-cpu"] = Object.fromEntries(Object.entries(switchCpu).map(([n, list]) => [
          `${n} host(s)`, { deployer: figure(list.map((c) => c.deployer)), machine: figure(list.map((c) => c.machine)) },
        ]));
        console.log(`CPU per up (s), median (min–max): ${Object.entries(switchCpu).map(([n, list]) =>
          `${n} host(s): deployer ${summary(list.map((c) => c.deployer))}, machine ${summary(list.map((c) => c.machine))}`).join("; ")}`);
        results["slowEvaluation"] = slowEvaluation;
        finish("fleet-switch");
      }
      for (const s of [ours, base, one]) await s.stack.workspace.removeStack("bench", { force: true }).catch(() => undefined);
    }

    if (want("cache")) {
      runs["fleet-cache"] = startRun("fleet-cache");
      await cacheBench(hosts.slice(0, HOSTS));
      finish("fleet-cache");
    }
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
  }
}

/** 20 hosts switch to a new closure (5 MiB, incompressible): from a binary cache, or fed by the deployer. */
async function cacheBench(fleet: TestHost[]) {
  const cache = await startBinaryCacheServer();
  const key = await generateCacheKey("fleet-bench-1");
  let version = 0;
  const newSystem = async (mode: string) => {
    const v = version++;
    return (await execa("nix-build", ["--no-out-link", SYSTEM_NIX, "--argstr", "label", `fleet-c-${mode}-${run}-${v}`,
      "--arg", "fillerCount", "5", "--arg", "fillerBytes", String(5 * 1024 * 1024), "--argstr", "fillerSeed", `c-${run}-${v}`])).stdout.trim();
  };
  const bytes = { cache: [] as number[], deployer: [] as number[] };
  const spec = (h: TestHost, toplevel: string, cached: boolean) => nixosHostSchema.parse({
    connection: { host: h.address, privateKey: h.clientPrivateKey, hostKey: h.hostPublicKey },
    system: { storePath: toplevel },
    ...(cached ? { binaryCache: { url: cache.url, pushUrl: `${cache.url}?compression=zstd`, publicKey: key.publicKey, secretKeyFile: key.secretKeyFile } } : {}),
  });
  const fromCache = async () => {
    const toplevel = await newSystem("cache");
    cache.resetStats();
    const { seconds } = await timed(() => Promise.all(fleet.map((h) => switchHost(spec(h, toplevel, true), toplevel, undefined, () => {}))));
    bytes.cache.push(cache.stats().putBytes);
    return seconds;
  };
  const fromDeployer = async () => {
    const toplevel = await newSystem("deployer");
    let sent = 0;
    // copy's first progress line gives the NAR bytes it is about to stream to that host.
    const progress = (line: string) => {
      const m = /^copy: \d+ of \d+ paths missing on the target \(([\d.]+) MiB\)/.exec(line);
      if (m) sent += Number(m[1]) * 1024 * 1024;
    };
    const { seconds } = await timed(() => Promise.all(fleet.map((h) => switchHost(spec(h, toplevel, false), toplevel, undefined, progress))));
    bytes.deployer.push(sent);
    return seconds;
  };
  try {
    const r = await interleaved(fromCache, fromDeployer);
    results["cache-wall"] = report(`${fleet.length} hosts switching to a new 5 MiB closure: wall time`, "from the binary cache", "fed by the deployer", r);
    results["cache-bytes"] = report(`${fleet.length} hosts: bytes the deployer sends (cache: HTTP PUT bytes; deployer: NAR bytes streamed over SSH)`,
      "from the binary cache", "fed by the deployer", { a: bytes.cache, b: bytes.deployer }, "bytes");
  } finally {
    await cache.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
