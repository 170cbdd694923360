// Benchmark (not a test): a NixosHost update end to end (build check, copy of the missing
// paths, profile, switch-to-configuration, state read), as the provider runs it on a machine
// its stack manages (owner record in place, who and owner given), against `nix-copy-closure --to`
// plus `ssh … switch-to-configuration switch`, measured in the same run on fresh hosts,
// BENCH_REPEAT (default 5) rounds alternating which side goes first.
// Run: flock /tmp/nixos-pulumi-heavy.lock node dist/bench/update.js   (result: bench/results/update.json)
import { execa } from "execa";
import { switchHost } from "../provider/host/operations";
import { OWNER_RECORD } from "../provider/switch/owner-record";
import { nixosHostSchema } from "../provider/schema/nixos-host";
import { startHost, type TestHost } from "../test/harness/hosts";
import { buildTestSystem } from "../test/harness/systems";
import * as os from "node:os";
import { cpuSeconds, figure, opensshOptions, startRun, summary, table, timed, writeResult } from "./lib";
import { printTrace, startTrace, traceProgress } from "./trace";

const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 5);
const OWNER = { stack: "bench/update", resource: "urn:pulumi:update::bench::pulumi-nodejs:dynamic/nixos-pulumi:NixosHost::web" };

async function ours(host: TestHost, toplevel: string) {
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
  });
  startTrace();
  try {
    return await switchHost(spec, toplevel, undefined, traceProgress, { who: `stack ${OWNER.stack}, resource web`, owner: OWNER });
  } finally {
    printTrace("ours");
  }
}

const baselineCopySeconds: number[] = [];

async function baseline(host: TestHost, toplevel: string) {
  const sshOpts = opensshOptions(host);
  const copy = await timed(() => execa("nix-copy-closure", ["--to", `root@${host.address}`, toplevel], { env: { NIX_SSHOPTS: sshOpts } }));
  baselineCopySeconds.push(copy.seconds);
  await execa("sh", [
    "-c",
    `ssh ${sshOpts} root@${host.address} 'nix-env -p /nix/var/nix/profiles/system --set ${toplevel} && ${toplevel}/bin/switch-to-configuration switch'`,
  ]);
}

async function main() {
  const run = startRun("update");
  const [v1, v2] = await Promise.all([
    buildTestSystem({ label: "upd-v1", fillerCount: 100, fillerBytes: 20 * 1024 * 1024 }),
    buildTestSystem({ label: "upd-v2", fillerCount: 100, fillerBytes: 20 * 1024 * 1024 }),
  ]);
  const samples = { ours: [] as number[], baseline: [] as number[] };
  const deployerCpu = { ours: [] as number[], baseline: [] as number[] };
  for (let rep = 0; rep < REPEAT; rep++) {
    const a = await startHost({ name: `upd-ours${rep}`, state: "nixos", system: v1 });
    const b = await startHost({ name: `upd-base${rep}`, state: "nixos", system: v1 });
    try {
      // As after its install or adopt: the machine names the stack that manages it.
      await a.run(`mkdir -p ${OWNER_RECORD.replace(/\/[^/]*$/, "")} && echo '${OWNER.stack} ${OWNER.resource}' > ${OWNER_RECORD}`);
      // Alternating which side goes first.
      // CPU seconds on the deployer's side: ours runs in this process (plus the local nix it
      // starts), the baseline in its child processes (nix-copy-closure, ssh and theirs).
      const cpu = async (run: () => Promise<unknown>, list: number[]) => {
        const self = process.cpuUsage();
        const children = cpuSeconds().children;
        await run();
        const used = process.cpuUsage(self);
        list.push((used.user + used.system) / 1e6 + cpuSeconds().children - children);
      };
      const sides = [
        () => cpu(() => timed(() => ours(a, v2)).then((t) => samples.ours.push(t.seconds)), deployerCpu.ours),
        () => cpu(() => timed(() => baseline(b, v2)).then((t) => samples.baseline.push(t.seconds)), deployerCpu.baseline),
      ];
      for (const side of rep % 2 === 0 ? sides : [...sides].reverse()) await side();
      for (const h of [a, b]) {
        const current = (await h.run("readlink /run/current-system")).trim();
        if (current !== v2) throw new Error(`${h.name} did not switch (runs ${current})`);
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    console.error(
      `round ${rep + 1}/${REPEAT}: ours ${samples.ours.at(-1)!.toFixed(2)} s, baseline ${samples.baseline.at(-1)!.toFixed(2)} s (its nix-copy-closure ${baselineCopySeconds.at(-1)!.toFixed(2)} s); ` +
        `deployer CPU ours ${deployerCpu.ours.at(-1)!.toFixed(2)} s, baseline ${deployerCpu.baseline.at(-1)!.toFixed(2)} s; load ${os.loadavg()[0]!.toFixed(2)}`,
    );
  }
  const ratios = samples.ours.map((o, i) => o / samples.baseline[i]!);
  console.log(
    table([
      ["update (one changed path)", "ours (s)", "nix-copy-closure + ssh switch (s)", "ratio ours/baseline (per round)"],
      ["---", "---", "---", "---"],
      [`median (min–max), ${REPEAT} rounds`, summary(samples.ours, 3), summary(samples.baseline, 3), summary(ratios)],
      ["deployer CPU (s)", summary(deployerCpu.ours, 3), summary(deployerCpu.baseline, 3), ""],
    ]),
  );
  writeResult(run, {
    repeat: REPEAT,
    ours: figure(samples.ours),
    baseline: figure(samples.baseline),
    ratio: figure(ratios),
    baselineCopySeconds: figure(baselineCopySeconds),
    deployerCpuSeconds: { ours: figure(deployerCpu.ours), baseline: figure(deployerCpu.baseline) },
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
