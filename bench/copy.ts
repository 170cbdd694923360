// Benchmark (not a test): copying a ~500 path / ~200 MB closure to a test host, cold and with
// one changed path, against `nix-copy-closure --to` over OpenSSH measured in the same run;
// and the provider's peak memory while copying a 1 GB closure.
// Run: node dist/bench/copy.js   (results also in bench/results-copy.json)
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { connect } from "../provider/ssh";
import { copyClosure } from "../provider/nix";
import { connectionSchema } from "../provider/schema/connection";
import { startHost, type TestHost } from "../test/harness/hosts";
import { buildTestSystem } from "../test/harness/systems";
import { median, opensshOptions, table, timed } from "./lib";

const PATHS = Number(process.env["BENCH_PATHS"] ?? 500);
const BYTES = Number(process.env["BENCH_BYTES"] ?? 200 * 1024 * 1024);
const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 3);

async function ours(host: TestHost, toplevel: string) {
  const session = await connect(connectionSchema.parse({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }));
  try {
    return await copyClosure(session, toplevel);
  } finally {
    session.close();
  }
}

function baseline(host: TestHost, toplevel: string) {
  return execa("nix-copy-closure", ["--to", `root@${host.address}`, toplevel], { env: { NIX_SSHOPTS: opensshOptions(host) } });
}

/** Peak RSS of a separate node process that only runs copyClosure (the provider's work). */
async function peakMemoryMiB(host: TestHost, toplevel: string): Promise<number> {
  const script = `
    const { connect } = require(${JSON.stringify(path.resolve(__dirname, "../provider/ssh"))});
    const { copyClosure } = require(${JSON.stringify(path.resolve(__dirname, "../provider/nix"))});
    const { connectionSchema } = require(${JSON.stringify(path.resolve(__dirname, "../provider/schema/connection"))});
    (async () => {
      const s = await connect(connectionSchema.parse(${JSON.stringify({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey })}));
      await copyClosure(s, ${JSON.stringify(toplevel)});
      s.close();
      console.log(process.resourceUsage().maxRSS);
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const { stdout } = await execa("node", ["-e", script]);
  return Number(stdout.trim()) / 1024;
}

async function fresh(name: string) {
  return startHost({ name, state: "installer" });
}

async function main() {
  console.error(`building test closures (${PATHS} paths, ${(BYTES / 1048576).toFixed(0)} MiB)...`);
  const v1 = await buildTestSystem({ label: "bench-v1", fillerCount: PATHS, fillerBytes: BYTES });
  const v2 = await buildTestSystem({ label: "bench-v2", fillerCount: PATHS, fillerBytes: BYTES });
  const results: Record<string, number> = {};
  const hosts: TestHost[] = [];
  try {
    // Alternate ours and the baseline on fresh hosts, REPEAT times each; report medians.
    const samples: Record<string, number[]> = { coldOurs: [], coldBaseline: [], incrementalOurs: [], incrementalBaseline: [] };
    for (let rep = 0; rep < REPEAT; rep++) {
      const [a, b] = [await fresh(`ours${rep}`), await fresh(`base${rep}`)];
      hosts.push(a, b);
      samples["coldOurs"]!.push((await timed(() => ours(a, v1))).seconds);
      samples["coldBaseline"]!.push((await timed(() => baseline(b, v1))).seconds);
      samples["incrementalOurs"]!.push((await timed(() => ours(a, v2))).seconds);
      samples["incrementalBaseline"]!.push((await timed(() => baseline(b, v2))).seconds);
      await Promise.all([a.stop(), b.stop()]);
    }
    for (const [key, values] of Object.entries(samples)) results[key] = median(values);

    console.error("building a 1 GiB closure for the memory measurement...");
    const big = await buildTestSystem({ label: "bench-1g", fillerCount: 100, fillerBytes: 1024 * 1024 * 1024 });
    const c = await fresh("mem");
    hosts.push(c);
    results["peakRssMiB1GiB"] = await peakMemoryMiB(c, big);
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
  }
  const ratio = (o: number, b: number) => (o / b).toFixed(2);
  console.log(
    table([
      ["copy", "ours (s)", "nix-copy-closure (s)", "ratio ours/baseline"],
      ["---", "---", "---", "---"],
      [`cold, ${PATHS} paths`, results["coldOurs"]!.toFixed(2), results["coldBaseline"]!.toFixed(2), ratio(results["coldOurs"]!, results["coldBaseline"]!)],
      ["one changed path", results["incrementalOurs"]!.toFixed(2), results["incrementalBaseline"]!.toFixed(2), ratio(results["incrementalOurs"]!, results["incrementalBaseline"]!)],
    ]),
  );
  console.log(`peak RSS of the copying process, 1 GiB closure: ${results["peakRssMiB1GiB"]!.toFixed(0)} MiB`);
  writeFileSync(path.resolve(__dirname, "../../bench/results-copy.json"), JSON.stringify(results, null, 2) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
