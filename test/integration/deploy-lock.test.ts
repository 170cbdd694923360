// Two deployers aimed at one machine: the target-side deploy lock makes the second wait for
// the first or refuse naming it; a killed or vanished deployer's lock ends with its
// connection; an activation a killed deployer left running is waited for; and two
// concurrent switches of one host never activate at once.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { acquireDeployLock } from "../../provider/switch/deploy-lock";
import { activationScript } from "../../provider/switch";
import { copyClosure } from "../../provider/nix";
import { switchHost } from "../../provider/host/operations";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";
import { buildTestSystem } from "../harness/systems";

let host: TestHost;
let proxy: TcpProxy;
let base: string;
before(async () => {
  base = await buildTestSystem({ label: "lock-base" });
  host = await startHost({ name: "lock", state: "nixos", system: base });
  proxy = await startProxy({ target: { host: host.address, port: host.port } });
});
after(async () => {
  await proxy?.close();
  await host?.stop();
});

const direct = () => connect(connectionSchema.parse({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }));
const viaProxy = () => connect(connectionSchema.parse({ host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }));
const seconds = (since: number) => (Date.now() - since) / 1000;

test("a second deployer waits for the first and gets the lock when it is released", async () => {
  const first = await acquireDeployLock(await direct(), { holder: "stack a/one, resource web", waitSeconds: 5 });
  const lines: string[] = [];
  const started = Date.now();
  const second = acquireDeployLock(await direct(), { holder: "stack b/two, resource web", waitSeconds: 20, log: (l) => lines.push(l) });
  await new Promise((r) => setTimeout(r, 1500));
  await first.release();
  const held = await second;
  const waited = seconds(started);
  await held.release();
  assert.ok(waited >= 1.4 && waited < 6, `waited ${waited}s`);
  assert.ok(lines.some((l) => /being deployed by stack a\/one, resource web from \S+ \(pid \d+, started /.test(l)), lines.join("\n"));
});

test("a second deployer refuses after its bounded wait, naming the first", async () => {
  const first = await acquireDeployLock(await direct(), { holder: "stack a/one, resource web", waitSeconds: 5 });
  try {
    const started = Date.now();
    await assert.rejects(acquireDeployLock(await direct(), { holder: "stack b/two, resource web", waitSeconds: 2 }), (err: Error) => {
      assert.match(err.message, /\[.*: lock\] another deployment holds this machine: stack a\/one, resource web from \S+ \(pid \d+, started \d{4}-/);
      assert.match(err.message, /gave up after waiting 2s/);
      assert.match(err.message, /fix: let that deployment finish/);
      return true;
    });
    assert.ok(seconds(started) < 5, "bounded wait");
  } finally {
    await first.release();
  }
});

test("a killed deployer's lock ends with its connection", async () => {
  await acquireDeployLock(await viaProxy(), { holder: "stack killed/one", waitSeconds: 5 });
  proxy.cut(); // what the target sees when the deployer's process dies: the connection closes
  const started = Date.now();
  const next = await acquireDeployLock(await direct(), { holder: "stack next/one", waitSeconds: 10 });
  await next.release();
  assert.ok(seconds(started) < 3, `took ${seconds(started)}s`);
});

test("a deployer that vanished without closing its connection loses the lock after the heartbeat timeout", async () => {
  await acquireDeployLock(await viaProxy(), { holder: "stack silent/one", waitSeconds: 5, heartbeatSeconds: 2 });
  proxy.stall(); // the connection stays open but nothing arrives (a deployer whose network died)
  try {
    const started = Date.now();
    const next = await acquireDeployLock(await direct(), { holder: "stack next/two", waitSeconds: 20 });
    await next.release();
    const waited = seconds(started);
    assert.ok(waited >= 1 && waited < 8, `waited ${waited}s`);
  } finally {
    proxy.cut();
    proxy.resume();
  }
});

test("an activation left running by a killed deployer is waited for, and named when the wait runs out", async () => {
  // What a killed deployer leaves behind: a detached activate.sh still running (here held
  // by a slow health check), and no lock.
  const slow = await buildTestSystem({ label: "lock-slow" });
  const session = await direct();
  const dir = "/run/nixos-pulumi/left-behind";
  try {
    await copyClosure(session, slow);
    await host.run(`mkdir -p ${dir} && cat > ${dir}/activate.sh && echo 'sleep 4' > ${dir}/health-checks`, activationScript());
    await host.run(`setsid sh ${dir}/activate.sh ${dir} ${slow} switch on-failure </dev/null >/dev/null 2>&1 &`);
    await assert.rejects(acquireDeployLock(await direct(), { holder: "stack impatient/one", waitSeconds: 1 }), (err: Error) => {
      assert.match(err.message, /an earlier activation is still running on the machine \(pid \d+: switch to \/nix\/store\/\S+-lock-slow/);
      return true;
    });
    const lines: string[] = [];
    const lock = await acquireDeployLock(await direct(), { holder: "stack patient/one", waitSeconds: 30, log: (l) => lines.push(l) });
    await lock.release();
    assert.equal((await host.run(`cat ${dir}/result`)).trim(), "ok", "the activation finished before the lock was granted");
    assert.ok(lines.some((l) => /earlier activation still runs/.test(l)), lines.join("\n"));
  } finally {
    session.close();
    await host.run(`rm -rf ${dir}`);
  }
});

test("two concurrent switches of one host run one after the other, never two activations at once", async () => {
  const [v1, v2] = await Promise.all([buildTestSystem({ label: "lock-v1" }), buildTestSystem({ label: "lock-v2" })]);
  const log = "/root/activation-intervals";
  const spec = (toplevel: string) =>
    nixosHostSchema.parse({
      connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { storePath: toplevel },
      // The health check runs with the system's own tools (busybox here: no date +%N).
      switch: { healthChecks: [`echo "start $(cut -d" " -f1 /proc/uptime) ${toplevel}" >> ${log}; sleep 1; echo "end $(cut -d" " -f1 /proc/uptime)" >> ${log}`], timeoutSeconds: 60 },
    });
  const lines: string[] = [];
  const results = await Promise.all([
    switchHost(spec(v1), v1, undefined, (l) => lines.push(`A ${l}`), { who: "stack a/dev, resource web" }),
    switchHost(spec(v2), v2, undefined, (l) => lines.push(`B ${l}`), { who: "stack b/dev, resource web" }),
  ]);
  const events = (await host.run(`cat ${log}`)).trim().split("\n").map((l) => l.split(" "));
  assert.deepEqual(events.map((e) => e[0]), ["start", "end", "start", "end"], `activations overlapped:\n${events.join("\n")}`);
  assert.ok(Number(events[2]![1]) >= Number(events[1]![1]));
  const last = events[2]![2]!;
  assert.equal((await host.run("readlink /run/current-system")).trim(), last);
  assert.ok(results.some((r) => r.currentSystem === last));
  assert.ok(lines.some((l) => /being deployed by stack [ab]\/dev, resource web/.test(l)), lines.join("\n"));
});
