// Benchmark (not a test): time to start and tear down 1 and 20 tier-1 test hosts.
// Run: node dist/bench/hosts.js
import { startHosts } from "../test/harness/hosts";

async function measure(count: number): Promise<{ start: number; stop: number }> {
  const t0 = performance.now();
  const hosts = await startHosts(count, { name: `bench${count}-`, state: "installer" });
  const t1 = performance.now();
  await Promise.all(hosts.map((h) => h.stop()));
  return { start: (t1 - t0) / 1000, stop: (performance.now() - t1) / 1000 };
}

async function main() {
  const rows: string[] = ["hosts | start (s) | teardown (s) | start per host (ms)", "---|---|---|---"];
  for (const count of [1, 20]) {
    const r = await measure(count);
    rows.push(`${count} | ${r.start.toFixed(2)} | ${r.stop.toFixed(2)} | ${((r.start / count) * 1000).toFixed(0)}`);
  }
  console.log(rows.join("\n"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
