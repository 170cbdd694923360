// Benchmark (not a test): bytes a copy puts on the wire when the connection is cut at half
// (the fault proxy drops it, the copy reconnects and resumes) vs the same copy uncut, for a
// closure of many paths and for one large path (staged, resumed mid-path). BENCH_REPEAT
// (>= 5) interleaved repeats on fresh hosts, alternating which goes first; median (min–max).
// Run: flock /tmp/nixos-pulumi-heavy.lock node dist/bench/copy-resume.js   (result: bench/results/copy-resume.json)
import { connect } from "../provider/ssh";
import { copyClosure } from "../provider/copy";
import { connectionSchema } from "../provider/schema/connection";
import { startHost } from "../test/harness/hosts";
import { startProxy } from "../test/harness/proxy";
import { buildTestSystem } from "../test/harness/systems";
import { figure, startRun, summary, table, writeResult } from "./lib";

const MiB = 1024 * 1024;
const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 5);
const RATE = Number(process.env["BENCH_RATE"] ?? 25 * MiB);

async function copy(toplevel: string, cutAt: number | undefined) {
  const host = await startHost({ name: "resume", state: "installer" });
  const proxy = await startProxy({ target: { host: host.address, port: host.port } });
  proxy.setRate(RATE);
  const open = () =>
    connect(connectionSchema.parse({ host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }), { retryIntervalMs: 200 });
  let cut = false;
  try {
    const started = performance.now();
    const result = await copyClosure(await open(), toplevel, {
      compress: "none",
      reconnect: open,
      progress: (line) => {
        const m = /copy: \d+\/\d+ paths, ([\d.]+)\/([\d.]+) MiB/.exec(line);
        if (cutAt !== undefined && !cut && m && Number(m[1]) >= cutAt * Number(m[2])) {
          cut = true;
          proxy.cut();
        }
      },
    });
    result.session.close();
    if (cutAt !== undefined && result.resumes !== 1) throw new Error(`expected one resume, got ${result.resumes}`);
    return { wire: result.wireBytes / MiB, nar: result.bytesCopied / MiB, seconds: (performance.now() - started) / 1000 };
  } finally {
    await proxy.close();
    await host.stop();
  }
}

async function main() {
  const run = startRun("copy-resume");
  const figures: Record<string, unknown> = { repeat: REPEAT, rateBytesPerSecond: RATE };
  const many = await buildTestSystem({ label: "bench-resume-many", fillerCount: 100, fillerBytes: 100 * MiB });
  const one = await buildTestSystem({ label: "bench-resume-one", fillerCount: 1, fillerBytes: 160 * MiB });
  const rows = [["copy through the proxy at " + (RATE / MiB).toFixed(0) + " MiB/s", "NAR MiB", "MiB on the wire, uncut", "MiB on the wire, cut at 50%", "ratio cut/uncut", "seconds uncut", "seconds cut"], ["---", "---", "---", "---", "---", "---", "---"]];
  for (const [label, toplevel] of [["100 paths / 100 MiB", many], ["one 160 MiB path (staged)", one]] as const) {
    const uncut: Awaited<ReturnType<typeof copy>>[] = [];
    const cut: Awaited<ReturnType<typeof copy>>[] = [];
    for (let rep = 0; rep < REPEAT; rep++) {
      if (rep % 2 === 0) {
        uncut.push(await copy(toplevel, undefined));
        cut.push(await copy(toplevel, 0.5));
      } else {
        cut.push(await copy(toplevel, 0.5));
        uncut.push(await copy(toplevel, undefined));
      }
      console.error(`${label}: round ${rep + 1}/${REPEAT}: uncut ${uncut.at(-1)!.wire.toFixed(1)} MiB, cut ${cut.at(-1)!.wire.toFixed(1)} MiB`);
    }
    figures[label] = { wireMiBUncut: figure(uncut.map((r) => r.wire)), wireMiBCut: figure(cut.map((r) => r.wire)), ratio: figure(cut.map((r, i) => r.wire / uncut[i]!.wire)) };
    rows.push([
      label,
      uncut[0]!.nar.toFixed(1),
      summary(uncut.map((r) => r.wire), 1),
      summary(cut.map((r) => r.wire), 1),
      summary(cut.map((r, i) => r.wire / uncut[i]!.wire)),
      summary(uncut.map((r) => r.seconds)),
      summary(cut.map((r) => r.seconds)),
    ]);
  }
  console.log(table(rows));
  writeResult(run, figures);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
