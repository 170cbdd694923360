// Benchmark (not a test): closure copies against baselines measured in the same run, each
// figure from BENCH_REPEAT (>= 5) interleaved repeats on fresh hosts, alternating which side
// goes first, printed as median (min–max):
//   loopback: cold ~500 paths / 200 MB vs `nix-copy-closure --to` and vs `tar` of the same
//     paths over one OpenSSH connection; then one changed path vs nix-copy-closure;
//   slow:     ~200 MB of real files (compressible) through the fault proxy at 100 Mbit/s
//     vs `nix-copy-closure --to` and `nix-copy-closure --gzip --to`;
//   memory:   peak RSS of the deployer copying a 1 GiB closure vs nix-copy-closure's: the copy's
//     child process's peak plus what the calling process grew by during the copy (and, for
//     comparison, the whole peak of a process copying in process, as before the child).
// Run: flock /tmp/nixos-pulumi-heavy.lock node dist/bench/copy.js   (BENCH_ONLY=loopback,slow,memory)
// Results: bench/results/copy-<part>.json, one per part run.
import * as path from "node:path";
import { execa } from "execa";
import { connect } from "../provider/ssh";
import { copyClosure, type CopyResult } from "../provider/copy";
import { connectionSchema } from "../provider/schema/connection";
import { startHost, type TestHost } from "../test/harness/hosts";
import { startProxy, type TcpProxy } from "../test/harness/proxy";
import { buildTestSystem } from "../test/harness/systems";
import { buildRealFilesClosure } from "../test/harness/real-files";
import { opensshOptions, startRun, summary, table, timed, writeResult } from "./lib";

const MiB = 1024 * 1024;
const PATHS = Number(process.env["BENCH_PATHS"] ?? 500);
const BYTES = Number(process.env["BENCH_BYTES"] ?? 200 * MiB);
const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 5);
const ONLY = new Set((process.env["BENCH_ONLY"] ?? "loopback,slow,memory").split(","));
/** 100 Mbit/s. */
const SLOW_RATE = 12_500_000;
const IN_PROCESS = "ours, in process";

type Via = { address: string; port: number };

async function ours(host: TestHost, toplevel: string, via?: Via): Promise<CopyResult> {
  const session = await connect(
    connectionSchema.parse({ host: via?.address ?? host.address, port: via?.port ?? 22, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }),
  );
  const result = await copyClosure(session, toplevel);
  result.session.close();
  return result;
}

function nixCopyClosure(host: TestHost, toplevel: string, via?: Via, extra: string[] = []) {
  const target = `root@${via?.address ?? host.address}`;
  return execa("nix-copy-closure", [...extra, "--to", target, toplevel], { env: { NIX_SSHOPTS: opensshOptions(host, via) } });
}

/** The same paths' files, unregistered, through one OpenSSH connection: the transfer floor. */
async function tarOverSsh(host: TestHost, toplevel: string) {
  const { stdout } = await execa("nix-store", ["-qR", toplevel]);
  const list = stdout.split("\n").filter(Boolean).map((p) => p.slice(1));
  return execa("bash", ["-c", `tar -C / -cf - -T - | ssh ${opensshOptions(host)} root@${host.address} 'tar -C / -xf -'`], { input: list.join("\n") + "\n" });
}

type Side = { name: string; run: (host: TestHost, via?: Via) => Promise<unknown> };

/** REPEAT rounds on fresh hosts (each behind its own proxy when rate is set), sides alternating order. */
async function interleaved(label: string, sides: Side[], rate = 0, after?: (name: string, host: TestHost, via?: Via) => Promise<void>) {
  const seconds: Record<string, number[]> = Object.fromEntries(sides.map((s) => [s.name, []]));
  const extra: Record<string, number[]> = {};
  for (let rep = 0; rep < REPEAT; rep++) {
    const order = rep % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const host = await startHost({ name: `${label}${rep}`, state: "installer" });
      let proxy: TcpProxy | undefined;
      try {
        if (rate > 0) {
          proxy = await startProxy({ target: { host: host.address, port: host.port } });
          proxy.setRate(rate);
        }
        const via = proxy ? { address: proxy.address, port: proxy.port } : undefined;
        const t = await timed(() => side.run(host, via));
        seconds[side.name]!.push(t.seconds);
        const r = t.value as Partial<CopyResult>;
        if (typeof r?.wireBytes === "number") (extra[`${side.name} MiB on the wire`] ??= []).push(r.wireBytes / MiB);
        if (after) await after(side.name, host, via);
      } finally {
        await proxy?.close();
        await host.stop();
      }
    }
    console.error(`${label}: round ${rep + 1}/${REPEAT}: ${sides.map((s) => `${s.name} ${seconds[s.name]!.at(-1)!.toFixed(2)}s`).join(", ")}`);
  }
  return { seconds, extra };
}

function ratios(a: number[], b: number[]): number[] {
  return a.map((x, i) => x / b[i]!);
}

async function main() {
  const rows: string[][] = [["copy", "ours (s)", "baseline (s)", "ratio ours/baseline, median (min–max)"], ["---", "---", "---", "---"]];

  if (ONLY.has("loopback")) {
    const run = startRun("copy-loopback");
    console.error(`building test closures (${PATHS} paths, ${(BYTES / MiB).toFixed(0)} MiB)...`);
    const v1 = await buildTestSystem({ label: "bench-v1", fillerCount: PATHS, fillerBytes: BYTES });
    const v2 = await buildTestSystem({ label: "bench-v2", fillerCount: PATHS, fillerBytes: BYTES });
    const incremental: Record<string, number[]> = { ours: [], "nix-copy-closure": [] };
    const { seconds } = await interleaved(
      "cold",
      [
        { name: "ours", run: (h) => ours(h, v1) },
        { name: "nix-copy-closure", run: (h) => nixCopyClosure(h, v1) },
        { name: "tar", run: (h) => tarOverSsh(h, v1) },
      ],
      0,
      async (name, host) => {
        if (name === "tar") return;
        const t = await timed(async () => { if (name === "ours") await ours(host, v2); else await nixCopyClosure(host, v2); });
        incremental[name]!.push(t.seconds);
      },
    );
    const o = seconds["ours"]!;
    rows.push([`cold, ${PATHS} paths / ${(BYTES / MiB).toFixed(0)} MiB, loopback, vs nix-copy-closure --to`, summary(o), summary(seconds["nix-copy-closure"]!), summary(ratios(o, seconds["nix-copy-closure"]!))]);
    rows.push([`same, vs tar over one OpenSSH connection`, summary(o), summary(seconds["tar"]!), summary(ratios(o, seconds["tar"]!))]);
    rows.push([`one changed path, vs nix-copy-closure --to`, summary(incremental["ours"]!), summary(incremental["nix-copy-closure"]!), summary(ratios(incremental["ours"]!, incremental["nix-copy-closure"]!))]);
    writeResult(run, { repeat: REPEAT, paths: PATHS, bytes: BYTES, seconds, incremental });
  }

  if (ONLY.has("slow")) {
    const run = startRun("copy-slow");
    console.error("building a closure of ~200 MB of real files...");
    const real = await buildRealFilesClosure("bench-slow", 200 * MiB, 50);
    const { seconds, extra } = await interleaved(
      "slow",
      [
        { name: "ours", run: (h, via) => ours(h, real, via) },
        { name: "nix-copy-closure", run: (h, via) => nixCopyClosure(h, real, via) },
        { name: "nix-copy-closure --gzip", run: (h, via) => nixCopyClosure(h, real, via, ["--gzip"]) },
      ],
      SLOW_RATE,
    );
    const o = seconds["ours"]!;
    rows.push([`cold, ~200 MB real files, 100 Mbit/s proxy, vs nix-copy-closure --to`, summary(o), summary(seconds["nix-copy-closure"]!), summary(ratios(o, seconds["nix-copy-closure"]!))]);
    rows.push([`same, vs nix-copy-closure --gzip --to`, summary(o), summary(seconds["nix-copy-closure --gzip"]!), summary(ratios(o, seconds["nix-copy-closure --gzip"]!))]);
    writeResult(run, { repeat: REPEAT, rateBytesPerSecond: SLOW_RATE, seconds, extra });
    console.log(`slow link: ours put ${summary(extra["ours MiB on the wire"] ?? [0], 1)} MiB on the wire`);
  }

  if (ONLY.has("memory")) {
    const run = startRun("copy-memory");
    console.error("building a 1 GiB closure for the memory measurement...");
    const big = await buildTestSystem({ label: "bench-1g", fillerCount: 100, fillerBytes: 1024 * MiB });
    const rss: Record<string, number[]> = { ours: [], "ours: child": [], "ours: caller's growth": [], [IN_PROCESS]: [], "nix-copy-closure": [] };
    await interleaved("mem", [
      {
        name: "ours",
        run: async (h) => {
          const { stdout } = await execa("node", ["-e", oursScript(h, big, false)]);
          const m = JSON.parse(stdout.trim().split("\n").pop()!) as { childKiB: number; growthKiB: number };
          rss["ours: child"]!.push(m.childKiB / 1024);
          rss["ours: caller's growth"]!.push(m.growthKiB / 1024);
          rss["ours"]!.push((m.childKiB + m.growthKiB) / 1024);
        },
      },
      { name: IN_PROCESS, run: async (h) => rss[IN_PROCESS]!.push(await peakRssMiB(["node", "-e", oursScript(h, big, true)])) },
      {
        name: "nix-copy-closure",
        run: async (h) => rss["nix-copy-closure"]!.push(await peakRssMiB(["nix-copy-closure", "--to", `root@${h.address}`, big], { NIX_SSHOPTS: opensshOptions(h) })),
      },
    ]);
    rows.push([`peak RSS (MiB) copying 1 GiB (child's peak + caller's growth), vs nix-copy-closure --to`, summary(rss["ours"]!, 0), summary(rss["nix-copy-closure"]!, 0), summary(ratios(rss["ours"]!, rss["nix-copy-closure"]!))]);
    rows.push([`  of which the child's peak / the caller's growth`, summary(rss["ours: child"]!, 0), summary(rss["ours: caller's growth"]!, 0), ""]);
    rows.push([`same copy in process (the whole process's peak)`, summary(rss[IN_PROCESS]!, 0), summary(rss["nix-copy-closure"]!, 0), summary(ratios(rss[IN_PROCESS]!, rss["nix-copy-closure"]!))]);
    writeResult(run, { repeat: REPEAT, peakRssMiB: rss });
  }

  console.log(table(rows));
}

/** Peak RSS in MiB of a command (GNU time: the largest process of its tree). */
async function peakRssMiB(command: string[], env: Record<string, string> = {}): Promise<number> {
  const { stderr } = await execa("/usr/bin/time", ["-f", "maxrss=%M", ...command], { env });
  const kb = Number(/maxrss=(\d+)/.exec(stderr)?.[1]);
  if (!kb) throw new Error(`no maxrss in: ${stderr}`);
  return kb / 1024;
}

/**
 * A separate node process that runs the copy (the deployer's work). With the child (the
 * default), prints the child's peak RSS and how far this process's RSS rose above its level
 * before the copy (its peak is reset there through /proc/self/clear_refs).
 */
function oursScript(host: TestHost, toplevel: string, inProcess: boolean): string {
  const dist = path.resolve(__dirname, "..");
  return `
    const { readFileSync, writeFileSync } = require("node:fs");
    const { connect } = require(${JSON.stringify(path.join(dist, "provider/ssh"))});
    const { copyClosure } = require(${JSON.stringify(path.join(dist, "provider/copy"))});
    const { connectionSchema } = require(${JSON.stringify(path.join(dist, "provider/schema/connection"))});
    const status = (field) => parseInt(readFileSync("/proc/self/status", "utf8").split(String.fromCharCode(10)).find((l) => l.startsWith(field + ":")).slice(field.length + 1), 10);
    (async () => {
      const s = await connect(connectionSchema.parse(${JSON.stringify({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey })}));
      writeFileSync("/proc/self/clear_refs", "5");
      const before = status("VmRSS");
      const r = await copyClosure(s, ${JSON.stringify(toplevel)}, { inProcess: ${inProcess} });
      const growth = Math.max(0, status("VmHWM") - before);
      r.session.close();
      if (!${inProcess} && !r.childMaxRssKiB) throw new Error("the copy did not run in a child process");
      console.log(JSON.stringify({ childKiB: r.childMaxRssKiB, growthKiB: growth }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
