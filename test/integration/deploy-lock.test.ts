// Two deployers aimed at one machine: the target-side deploy lock makes the second wait for
// the first or refuse naming it; a killed or vanished deployer's lock ends with its
// connection; an activation a killed deployer left running is waited for; and two
// concurrent switches of one host never activate at once.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { acquireDeployLock } from "../../provider/lock/deploy-lock";
import { activationArgs, activationScript } from "../../provider/switch";
import { copyClosure } from "../../provider/copy";
import { switchHost } from "../../provider/host/operations";
import { runInstall } from "../../provider/install";
import { execa } from "execa";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";
import { buildTestSystem } from "../harness/systems";

/**
 * A take of the lock that the test expects to be refused: one granted by mistake is released
 * at once, so the failure stays in its own test instead of holding the host for the rest.
 */
function refusedLock(...args: Parameters<typeof acquireDeployLock>): Promise<unknown> {
  return acquireDeployLock(...args).then(async (lock) => {
    await lock.release();
    throw new Error("the lock was granted");
  });
}

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

test("an update that waited for the lock asks the target again: what the first deployer copied meanwhile is not sent twice", async () => {
  const MiB = 1024 * 1024;
  const shared = await buildTestSystem({ label: "lock-asked-again", fillerCount: 3, fillerBytes: MiB });
  const first = await acquireDeployLock(await direct(), { holder: "stack a/one, resource web", waitSeconds: 5 });
  const lines: string[] = [];
  let waiting: (() => void) | undefined;
  const secondWaits = new Promise<void>((r) => (waiting = r));
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: shared },
    switch: { timeoutSeconds: 30 },
  });
  const second = switchHost(spec, shared, undefined, (l) => {
    lines.push(l);
    if (/being deployed by stack a\/one/.test(l)) waiting!();
  }, { who: "stack b/two, resource web" });
  second.catch(() => undefined);
  await secondWaits;
  // The first deployer copies the same system while the second waits.
  const session = await direct();
  const copied = await copyClosure(session, shared);
  session.close();
  assert.ok(copied.pathsCopied >= 4, `the first deployer copied ${copied.pathsCopied} paths`);
  await first.release();
  const facts = await second;
  assert.equal(facts.currentSystem, shared);
  const copyLines = lines.filter((l) => /^copy: \d+ of \d+ paths missing/.test(l));
  assert.deepEqual(copyLines.map((l) => /^copy: (\d+) of/.exec(l)![1]), ["0"], lines.join("\n"));
  const held = lines.findIndex((l) => /lock: holding the deploy lock/.test(l));
  assert.ok(held >= 0 && lines.findIndex((l) => /^copy:/.test(l)) > held, `a copy line before the lock was held:\n${lines.join("\n")}`);
});

test("a second deployer refuses after its bounded wait, naming the first", async () => {
  const first = await acquireDeployLock(await direct(), { holder: "stack a/one, resource web", waitSeconds: 5 });
  try {
    const started = Date.now();
    await assert.rejects(refusedLock(await direct(), { holder: "stack b/two, resource web", waitSeconds: 2 }), (err: Error) => {
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

test("a cut lock connection keeps the lock for its holder's reconnect; a second deployer keeps waiting and refuses", async () => {
  const lines: string[] = [];
  const first = await acquireDeployLock(await viaProxy(), { holder: "stack a/one, resource web", waitSeconds: 5, leaseSeconds: 10, reconnect: viaProxy, log: (l) => lines.push(l) });
  try {
    const second = acquireDeployLock(await direct(), { holder: "stack b/two, resource web", waitSeconds: 3 });
    second.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    proxy.cut();
    await first.ensureHeld("the test's next step");
    assert.ok(lines.some((l) => /reconnected; still holding the deploy lock/.test(l)), lines.join("\n"));
    await assert.rejects(second, /another deployment holds this machine: stack a\/one, resource web from \S+ \(pid \d+, started \d{4}-/);
    await first.ensureHeld("the test's last step");
  } finally {
    await first.release();
  }
  // Released, the machine is free at once.
  const started = Date.now();
  await (await acquireDeployLock(await direct(), { holder: "stack c/three", waitSeconds: 5 })).release();
  assert.ok(seconds(started) < 3, `took ${seconds(started)}s`);
});

test("a holder away longer than its lease loses the lock, and its next step fails naming who took it", async () => {
  const first = await acquireDeployLock(await viaProxy(), { holder: "stack away/one", waitSeconds: 5, leaseSeconds: 2, reconnect: viaProxy });
  proxy.stall(); // the connection stays open but nothing arrives (a deployer whose network died)
  let second: Awaited<ReturnType<typeof acquireDeployLock>> | undefined;
  try {
    const started = Date.now();
    second = await acquireDeployLock(await direct(), { holder: "stack next/two", waitSeconds: 20 });
    const waited = seconds(started);
    assert.ok(waited >= 1 && waited < 8, `waited ${waited}s`);
  } finally {
    proxy.resume();
  }
  try {
    await assert.rejects(first.ensureHeld("activation"), (err: Error) => {
      assert.match(err.message, /\[.*: lock\] lost the deploy lock: stack next\/two from \S+ \(pid \d+, started \S+\) took this machine at \d{4}-\S+ while the lock's connection was down; stopped before activation/);
      return true;
    });
    await first.release(); // lost: releasing it must not touch the new holder's lock
    await assert.rejects(refusedLock(await direct(), { holder: "stack third/three", waitSeconds: 1 }), /another deployment holds this machine: stack next\/two/);
  } finally {
    await second?.release();
  }
});

test("a killed deployer's lock is taken over at once by the next deployer on its machine", async () => {
  // A real deployer process holding the lock, killed with SIGKILL (nothing released).
  const child = execa(process.execPath, ["-e", `
    const { connect } = require(${JSON.stringify(require.resolve("../../provider/ssh"))});
    const { connectionSchema } = require(${JSON.stringify(require.resolve("../../provider/schema/connection"))});
    const { acquireDeployLock } = require(${JSON.stringify(require.resolve("../../provider/lock/deploy-lock"))});
    connect(connectionSchema.parse(JSON.parse(process.env.CONNECTION)))
      .then((s) => acquireDeployLock(s, { holder: "stack killed/one", waitSeconds: 5 }))
      .then(() => console.log("locked"));
    setInterval(() => {}, 1000);`], {
    env: { CONNECTION: JSON.stringify({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }) },
    reject: false,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => /locked/.test(d.toString()) && resolve());
      void child.then((r) => reject(new Error(`the deployer process ended: ${r.stderr}`)));
    });
    assert.match(await host.run("cat /run/nixos-pulumi/deploy.lock.owner"), /stack killed\/one/);
  } finally {
    child.kill("SIGKILL");
    await child;
  }
  const lines: string[] = [];
  const started = Date.now();
  const next = await acquireDeployLock(await direct(), { holder: "stack next/one", waitSeconds: 10, log: (l) => lines.push(l) });
  await next.release();
  assert.ok(seconds(started) < 3, `took ${seconds(started)}s`);
  assert.ok(lines.some((l) => /held by stack killed\/one .*a process of this machine that no longer runs; taking it over/.test(l)), lines.join("\n"));
});

test("a deployer that vanished without closing its connection loses the lock after its lease", async () => {
  await acquireDeployLock(await viaProxy(), { holder: "stack silent/one", waitSeconds: 5, leaseSeconds: 2 });
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

test("across a kexec the lock holds the old boot until it ends and is taken again on the new one", async () => {
  const first = await acquireDeployLock(await direct(), { holder: "stack install/one, resource web", waitSeconds: 5 });
  try {
    await first.keepUntilReboot();
    // Until the kexec, the lease still holds the old boot.
    await assert.rejects(refusedLock(await direct(), { holder: "stack b/two", waitSeconds: 1 }), /another deployment holds this machine: stack install\/one/);
    await host.run("rm -rf /run/nixos-pulumi"); // what the kexec does: the installer boots with an empty /run
    await first.retakeAfterBoot(direct);
    await first.ensureHeld("the disko phase");
    await assert.rejects(refusedLock(await direct(), { holder: "stack b/two", waitSeconds: 1 }), /another deployment holds this machine: stack install\/one/);
  } finally {
    await first.release();
  }
  // Someone faster on the new boot: the installer is theirs, and the install stops naming them.
  const slow = await acquireDeployLock(await direct(), { holder: "stack install/slow", waitSeconds: 5 });
  await slow.keepUntilReboot();
  await host.run("rm -rf /run/nixos-pulumi");
  const fast = await acquireDeployLock(await direct(), { holder: "stack install/fast", waitSeconds: 5 });
  try {
    await assert.rejects(slow.retakeAfterBoot(direct), /lost the deploy lock: stack install\/fast from \S+ \(pid \d+, started \S+\) took the new boot at \d{4}-/);
  } finally {
    await fast.release();
  }
});

test("a rescue system without flock deploys unlocked until the kexec; the installer, which has flock, is locked", async () => {
  // A minimal rescue system: no flock on its PATH (a non-executable file over it, in this host's own mount namespace).
  await host.run("touch /run/no-flock && chmod 644 /run/no-flock && mount --bind /run/no-flock /usr/bin/flock");
  const lines: string[] = [];
  let lock;
  try {
    lock = await acquireDeployLock(await direct(), { holder: "stack rescue/one, resource web", waitSeconds: 5, log: (l) => lines.push(l) });
    assert.ok(lines.some((l) => /has no `flock` command; deploying without a deploy lock/.test(l)), lines.join("\n"));
    await lock.ensureHeld("the kexec phase");
    await lock.keepUntilReboot();
  } finally {
    await host.run("umount /usr/bin/flock; rm -f /run/no-flock");
  }
  await host.run("rm -rf /run/nixos-pulumi"); // the installer boots with an empty /run
  try {
    await lock.retakeAfterBoot(direct);
    assert.ok(lines.some((l) => /holding the deploy lock on \S+ again after the boot/.test(l)), lines.join("\n"));
    await lock.ensureHeld("the disko phase");
    await assert.rejects(refusedLock(await direct(), { holder: "stack b/two", waitSeconds: 1 }), /another deployment holds this machine: stack rescue\/one/);
  } finally {
    await lock.release();
  }
});

test("an install whose lock was taken while its connection was down stops before the next phase, naming the taker", async () => {
  const lock = await acquireDeployLock(await viaProxy(), { holder: "stack install/one", waitSeconds: 5, leaseSeconds: 2, reconnect: viaProxy });
  proxy.stall();
  let taker: Awaited<ReturnType<typeof acquireDeployLock>> | undefined;
  try {
    taker = await acquireDeployLock(await direct(), { holder: "stack install/two", waitSeconds: 20 });
  } finally {
    proxy.resume();
  }
  const lines: string[] = [];
  const spec = nixosHostSchema.parse({ connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }, system: { storePath: base } });
  const session = await direct();
  try {
    await assert.rejects(
      runInstall({ spec, toplevel: base, layout: undefined, progress: (l) => lines.push(l), session, connect: direct, lock }, ["disko"]),
      /lost the deploy lock: stack install\/two from \S+ \(pid \d+, started \S+\) took this machine at \S+ while the lock's connection was down; stopped before the disko phase/,
    );
    assert.ok(!lines.some((l) => /disko: start/.test(l)), lines.join("\n"));
  } finally {
    session.close();
    await lock.release();
    await taker?.release();
  }
});

test("after a kexec into an installer without flock the install goes on unlocked, with a warning", async () => {
  const lines: string[] = [];
  const lock = await acquireDeployLock(await direct(), { holder: "stack install/three", waitSeconds: 5, log: (l) => lines.push(l) });
  await lock.keepUntilReboot();
  await host.run("rm -rf /run/nixos-pulumi && touch /run/no-flock && chmod 644 /run/no-flock && mount --bind /run/no-flock /usr/bin/flock");
  try {
    await lock.retakeAfterBoot(direct);
    assert.ok(lines.some((l) => /has no `flock` command after the boot; going on without a deploy lock/.test(l)), lines.join("\n"));
    await lock.ensureHeld("the disko phase");
    await lock.release();
  } finally {
    await host.run("umount /usr/bin/flock; rm -f /run/no-flock");
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
    await host.run(`setsid sh ${dir}/activate.sh ${activationArgs({ dir, toplevel: slow, action: "switch", rollback: "on-failure" }).join(" ")} </dev/null >/dev/null 2>&1 &`);
    await assert.rejects(refusedLock(await direct(), { holder: "stack impatient/one", waitSeconds: 1 }), (err: Error) => {
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

test("a copy cut mid-way keeps the machine locked: the waiting second deployer never activates and refuses naming the first", async () => {
  const MiB = 1024 * 1024;
  const [big, other] = await Promise.all([buildTestSystem({ label: "lock-cut-big", fillerCount: 6, fillerBytes: 18 * MiB }), buildTestSystem({ label: "lock-cut-other" })]);
  const log = "/root/activation-cut";
  const record = `echo "$(cut -d" " -f1 /proc/uptime) $(readlink /run/current-system)" >> ${log}`;
  const spec = (toplevel: string, connection: Record<string, unknown>, timeoutSeconds: number) =>
    nixosHostSchema.parse({
      connection: { privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, ...connection },
      system: { storePath: toplevel },
      copy: { compress: "none" },
      switch: { healthChecks: [record], timeoutSeconds },
    });
  proxy.setRate(4 * MiB);
  const firstLines: string[] = [];
  let cut = false;
  let secondStarted: (() => void) | undefined;
  const secondMayStart = new Promise<void>((r) => (secondStarted = r));
  try {
    const first = switchHost(spec(big, { host: proxy.address, port: proxy.port }, 60), big, undefined, (l) => {
      firstLines.push(l);
      if (/lock: holding the deploy lock/.test(l)) secondStarted!();
      const m = /copy: \d+\/\d+ paths, ([\d.]+)\/([\d.]+) MiB/.exec(l);
      if (!cut && m && Number(m[1]) >= 0.3 * Number(m[2])) {
        cut = true;
        firstLines.push("-- cut --");
        proxy.cut();
      }
    }, { who: "stack a/dev, resource web" });
    first.catch(() => undefined);
    await secondMayStart;
    const secondLines: string[] = [];
    const second = await switchHost(spec(other, { host: host.address }, 4), other, undefined, (l) => secondLines.push(l), { who: "stack b/dev, resource web" }).then(
      () => undefined,
      (err: Error) => err,
    );
    const firstDone = await first;
    const firstLog = firstLines.join("\n");
    assert.ok(cut, firstLog);
    assert.ok(second instanceof Error, `the second deployer went ahead:\n${secondLines.join("\n")}`);
    assert.match(second.message, /\[.*: lock\] another deployment holds this machine: stack a\/dev, resource web from \S+ \(pid \d+, started \d{4}-\d\d-\d\dT/);
    assert.match(second.message, /gave up after waiting 4s/);
    assert.ok(secondLines.some((l) => /is being deployed by stack a\/dev, resource web/.test(l)), secondLines.join("\n"));
    // Only the first deployer's system was ever activated.
    const activations = (await host.run(`cat ${log}`)).trim().split("\n");
    assert.deepEqual(activations.map((l) => l.split(" ")[1]), [big], activations.join("\n"));
    assert.equal(firstDone.currentSystem, big);
    assert.equal((await host.run("readlink /run/current-system")).trim(), big);
    assert.match(firstLog, /-- cut --[\s\S]*lock: the deploy lock's connection to \S+ ended \(its connection dropped\); reconnecting to keep it[\s\S]*lock: reconnected; still holding the deploy lock/);
    assert.match(firstLog, /reconnecting to resume/, "the copy itself was cut and resumed");
  } finally {
    proxy.setRate(0);
    await host.run(`rm -f ${log}`);
  }
});
