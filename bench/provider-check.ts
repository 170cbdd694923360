// Benchmark (not a test): what the provider process Pulumi starts for a no-op preview spends on
// NixosHost beyond loading @pulumi/pulumi: a fresh node process loads @pulumi/pulumi, then the
// implementation the first `check` loads, then runs `check` and `diff` for 20 hosts with the
// evaluations the program hands in. Baseline, in the same run: a fresh node process that only
// loads @pulumi/pulumi. BENCH_REPEAT (>= 5) interleaved repeats, alternating which goes first.
// Run: flock /tmp/nixos-pulumi-heavy.lock node dist/bench/provider-check.js   (result: bench/results/provider-check.json)
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { evaluateInProgram } from "../provider/nix/evaluation-input";
import { SYSTEM_NIX } from "../test/harness/systems";
import { figure, startRun, summary, table, writeResult } from "./lib";

const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 5);
const HOSTS = 20;
const DIST = path.resolve(__dirname, "..");

const timedScript = (body: string) => `
const t0 = performance.now();
require("@pulumi/pulumi");
(async () => { ${body} })().then(() => console.log(((performance.now() - t0) / 1000).toFixed(4)), (e) => { console.error(e); process.exit(1); });`;

async function main() {
  const bench = startRun("provider-check");
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-provider-check-"));
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "key")]);
  const run = `${process.pid}`;
  const systems = Array.from({ length: HOSTS }, (_, i) => ({ expression: { file: SYSTEM_NIX, args: { label: `pcheck-${run}-${i}` } } }));
  const evaluations = await Promise.all(systems.map((s) => evaluateInProgram(s)));
  if (evaluations.some((e) => !e)) throw new Error("a test system did not evaluate");
  const inputs = systems.map((system, i) => ({
    connection: { host: "127.0.0.9", privateKeyFile: path.join(dir, "key"), hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnW5xdSpDOVTeqn/8UxzJGX6KSPgBdhqLdXfb7kP3Z0" },
    system,
    __resourceName: `h${i}`,
    __stack: "bench/provider-check",
    evaluation: evaluations[i],
  }));
  writeFileSync(path.join(dir, "inputs.json"), JSON.stringify(inputs));
  const checks = timedScript(`
    const fs = require("fs");
    const impl = require(${JSON.stringify(path.join(DIST, "provider/resources/nixos-host-impl"))});
    for (const n of JSON.parse(fs.readFileSync(${JSON.stringify(path.join(dir, "inputs.json"))}, "utf8"))) {
      n.connection.privateKey = fs.readFileSync(n.connection.privateKeyFile, "utf8");
      delete n.connection.privateKeyFile;
      const r = await impl.check({}, n);
      if (r.failures) throw new Error(JSON.stringify(r.failures));
      await impl.diff("id", { ...r.inputs, stateVersion: 1 }, r.inputs);
    }`);
  const sides: Record<string, string> = { "load, first check, 20 checks and diffs": checks, "@pulumi/pulumi alone": timedScript("") };
  const seconds: Record<string, number[]> = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  for (let rep = 0; rep < REPEAT; rep++) {
    const names = rep % 2 === 0 ? Object.keys(sides) : Object.keys(sides).reverse();
    for (const name of names) {
      const { stdout } = await execa("node", ["-e", sides[name]!], { cwd: path.resolve(DIST, "..") });
      seconds[name]!.push(Number(stdout.trim().split("\n").pop()));
    }
  }
  const [ours, base] = Object.values(seconds) as [number[], number[]];
  console.log(
    table([
      ["provider process", "ours (s)", "baseline (s)", "extra (s)", "ratio"],
      ["---", "---", "---", "---", "---"],
      [`${HOSTS} NixosHosts, no-op preview's check + diff, vs loading @pulumi/pulumi`, summary(ours), summary(base), summary(ours.map((o, i) => o - base[i]!)), summary(ours.map((o, i) => o / base[i]!))],
    ]),
  );
  writeResult(bench, { repeat: REPEAT, hosts: HOSTS, ours: figure(ours), baseline: figure(base), extraSeconds: figure(ours.map((o, i) => o - base[i]!)), ratio: figure(ours.map((o, i) => o / base[i]!)) });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
