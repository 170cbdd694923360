// Benchmark (not a test): time to start and tear down 1 and 20 tier-1 test hosts, as a
// ratio to the baseline measured in the same run: making a host key and starting a bare
// sshd (private /run only, no per-host /nix, /etc, /dev, PID namespace) until it listens,
// then killing it.
// Cases alternate their order every other repeat.
// Run: flock /tmp/nixos-pulumi-heavy.lock node dist/bench/hosts.js [repeats=3]   (result: bench/results/hosts.json)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { startHost, startHosts } from "../test/harness/hosts";
import { buildTestSystem } from "../test/harness/systems";
import { figure, median, startRun, table, timed, writeResult } from "./lib";

function listening(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, address);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Baseline: a plain sshd on 127.0.250.1:22 from start to listening, then killed. */
async function bareSshd(): Promise<{ start: number; stop: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-sshd-"));
  try {
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "key")]);
    const config = path.join(dir, "sshd_config");
    writeFileSync(config, `ListenAddress 127.0.250.1:22\nHostKey ${dir}/key\nPidFile none\nUsePAM no\n`);
    const t0 = performance.now();
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "key2")]); // a host's key, as startHost makes
    // sshd needs /run/sshd; give it a private /run instead of touching this machine's.
    const sshd = spawn("unshare", ["--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec /usr/sbin/sshd -D -f ${config}`], { stdio: "ignore" });
    const deadline = Date.now() + 10_000;
    while (!(await listening("127.0.250.1", 22))) {
      if (Date.now() > deadline || sshd.exitCode !== null) throw new Error("baseline sshd did not start listening on 127.0.250.1:22");
      await new Promise((r) => setTimeout(r, 5));
    }
    const t1 = performance.now();
    const exited = new Promise((r) => sshd.once("exit", r));
    sshd.kill("SIGKILL");
    await exited;
    return { start: (t1 - t0) / 1000, stop: (performance.now() - t1) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function hosts(count: number): Promise<{ start: number; stop: number }> {
  const started = await timed(() => startHosts(count, { name: `bench${count}-`, state: "installer" }));
  const stopped = await timed(() => Promise.all(started.value.map((h) => h.stop())));
  return { start: started.seconds, stop: stopped.seconds };
}

async function nixosHost(system: string): Promise<{ start: number; stop: number }> {
  const started = await timed(() => startHost({ name: "bench-nixos", state: "nixos", system }));
  const stopped = await timed(() => started.value.stop());
  return { start: started.seconds, stop: stopped.seconds };
}

async function main() {
  const repeats = Number(process.argv[2] ?? 3);
  const run = startRun("hosts");
  const system = await buildTestSystem({ label: "bench-hosts" });
  await hosts(1); // warm up: the client key, page cache
  const runs: Record<string, { start: number[]; stop: number[] }> = {};
  const cases: [string, number, () => Promise<{ start: number; stop: number }>][] = [
    ["bare sshd (baseline)", 1, bareSshd],
    ["installer host", 1, () => hosts(1)],
    ["installer hosts", 20, () => hosts(20)],
    ["nixos host (system copied in, switched)", 1, () => nixosHost(system)],
  ];
  for (let i = 0; i < repeats; i++) {
    for (const [name, , measure] of i % 2 === 0 ? cases : [...cases].reverse()) {
      const r = await measure();
      (runs[name] ??= { start: [], stop: [] }).start.push(r.start);
      runs[name]!.stop.push(r.stop);
    }
  }
  const base = runs["bare sshd (baseline)"]!;
  const baseStart = median(base.start);
  const baseStop = median(base.stop);
  const rows: (string | number)[][] = [
    ["case", "count", "start (ms, median)", "start per host / baseline", "teardown (ms, median)", "teardown per host / baseline"],
    ["---", "---", "---", "---", "---", "---"],
  ];
  for (const [name, count] of cases) {
    const start = median(runs[name]!.start);
    const stop = median(runs[name]!.stop);
    rows.push([name, count, (start * 1000).toFixed(0), (start / count / baseStart).toFixed(1) + "x", (stop * 1000).toFixed(0), (stop / count / baseStop).toFixed(1) + "x"]);
  }
  console.log(`${repeats} repeats, ${os.cpus().length} cores\n` + table(rows));
  writeResult(run, { repeat: repeats, cases: Object.fromEntries(cases.map(([name, count]) => [name, { count, startSeconds: figure(runs[name]!.start), stopSeconds: figure(runs[name]!.stop) }])) });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
