// Copy and activation against real test hosts: only missing paths are copied; activation
// runs detached, survives SSH being cut, and rolls back on failure (exit 1, exit 4, health).
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect, type SshSession } from "../../provider/ssh";
import { copyClosure } from "../../provider/copy";
import { activate, readHostState } from "../../provider/switch";
import { connectionSchema } from "../../provider/schema/connection";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

let host: TestHost;
let base: string;
before(async () => {
  base = await buildTestSystem({ label: "sw-base" });
  host = await startHost({ name: "sw", state: "nixos", system: base });
});
after(async () => host?.stop());

// As the provider reconnects after an activation: the machine is expected back, so a
// refused port (sshd restarting) is retried until the deadline.
const open = () => connect(connectionSchema.parse({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }), { deadlineSeconds: 30 });

async function switchTo(session: SshSession, toplevel: string, extra: Partial<Parameters<typeof activate>[1]> = {}) {
  await copyClosure(session, toplevel);
  return activate(session, { toplevel, action: "switch", rollback: "on-failure", timeoutSeconds: 60, reconnect: open, ...extra });
}

const current = async () => (await host.run("readlink /run/current-system")).trim();

test("copy sends only the paths the target lacks, and they verify there", async () => {
  const next = await buildTestSystem({ label: "sw-copy", fillerCount: 5, fillerBytes: 500_000 });
  const session = await open();
  try {
    const lines: string[] = [];
    const first = await copyClosure(session, next, { progress: (l) => lines.push(l) });
    assert.equal(first.pathsTotal, 5 + 5, "busybox, kernel, initrd, kernel modules, toplevel and 5 fillers");
    assert.equal(first.pathsCopied, 6, "busybox and the kernel were already there");
    assert.ok(first.bytesCopied >= 500_000);
    assert.ok(lines.some((l) => /copy: 6\/6 paths/.test(l)), lines.join("\n"));
    await host.run(`nix-store --verify-path $(nix-store -qR ${next})`);
    const again = await copyClosure(session, next);
    assert.equal(again.pathsCopied, 0);
  } finally {
    session.close();
  }
});

test("exit 4 (some units failed) counts as a failure and rolls back", async () => {
  const before = await current();
  const broken = await buildTestSystem({ label: "sw-units", variant: "units-failed" });
  const session = await open();
  try {
    await assert.rejects(switchTo(session, broken), (err: Error) => {
      assert.match(err.message, /some units failed \(switch-to-configuration exit 4\)/);
      assert.match(err.message, /test-broken\.service/);
      assert.match(err.message, /rolled back/);
      return true;
    });
    assert.equal(await current(), before);
    assert.equal((await readHostState(session)).currentSystem, before);
    assert.equal((await host.run("readlink -f /nix/var/nix/profiles/system")).trim(), before, "profile rolled back too");
  } finally {
    session.close();
  }
});

test("a failing health check rolls back; with rollback none the host stays on the new system", async () => {
  const before = await current();
  const next = await buildTestSystem({ label: "sw-health" });
  const session = await open();
  try {
    await assert.rejects(switchTo(session, next, { healthChecks: ["test -e /etc/no-such-file"] }), /health check failed[\s\S]*rolled back/);
    assert.equal(await current(), before);
    const failing = await buildTestSystem({ label: "sw-none", variant: "fail" });
    await assert.rejects(switchTo(session, failing, { rollback: "none" }), /NOT rolled back/);
    assert.equal((await host.run("readlink -f /nix/var/nix/profiles/system")).trim(), failing);
    await switchTo(session, next, { healthChecks: [`${next}/bin/health`] });
    assert.equal(await current(), next);
  } finally {
    session.close();
  }
});

/** Runs `body` with a new system `label` copied over a fresh session (closed afterwards), and what ran before. */
async function withCopied(label: string, body: (session: SshSession, next: string, before: string) => Promise<void>): Promise<void> {
  const before = await current();
  const next = await buildTestSystem({ label });
  const session = await open();
  try {
    await copyClosure(session, next);
    await body(session, next, before);
  } finally {
    session.close();
  }
}

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test("a command that cannot start (sshd refuses another channel) is reported as such, not as a timeout, and nothing is activated", () =>
  withCopied("sw-nochannel", async (session, next, before) => {
    // As many commands run on this connection as sshd allows (the test hosts' MaxSessions 50): the next is refused.
    const busy = await fillChannels(session, 50);
    const started = Date.now();
    await assert.rejects(activate(session, { toplevel: next, action: "switch", rollback: "on-failure", timeoutSeconds: 5, reconnect: open }), (err: Error) => {
      assert.match(err.message, /could not start a command: .*open failed/i);
      assert.doesNotMatch(err.message, /did not finish within/);
      return true;
    });
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    assert.equal(await current(), before, "nothing was activated");
    session.close();
    await Promise.all(busy);
  }));

const switchDirs = async () => (await host.run("ls -d /run/nixos-pulumi/switch.* 2>/dev/null || true")).trim().split("\n").filter(Boolean);

test("an activation waits for startWhen: its run directory is made meanwhile, nothing starts; a rejection ends it unstarted with that error", () =>
  withCopied("sw-gated", async (session, next, before) => {
    // A run directory a deployer killed before its start left (no activate.sh): a leftover.
    await host.run("mkdir -m 700 /run/nixos-pulumi/switch.1-killedbeforestart && echo x > /run/nixos-pulumi/switch.1-killedbeforestart/toplevel");
    const gate = deferred();
    const activation = activate(session, { toplevel: next, action: "switch", rollback: "on-failure", timeoutSeconds: 60, reconnect: open, startWhen: gate.promise });
    // Waiting at the gate: the directory is there, without the script, and the machine unchanged.
    let waiting: string[] = [];
    for (let i = 0; i < 100 && waiting.length === 0; i++) {
      waiting = (await switchDirs()).filter((d) => !d.endsWith("killedbeforestart"));
      if (waiting.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(waiting.length, 1, "the activation's run directory, made while it waits");
    assert.deepEqual(await switchDirs(), waiting, "the leftover without activate.sh was removed");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await host.run(`ls ${waiting[0]}`)).split("\n").filter(Boolean).sort().join(" "), "health-checks toplevel");
    assert.equal(await current(), before, "nothing activated while waiting");
    gate.resolve();
    const result = await activation;
    await result.runDirRemoved;
    assert.equal(await current(), next);

    // A rejection: the error is the gate's own, the machine stays, no directory is left.
    const third = await buildTestSystem({ label: "sw-gated-refused" });
    await copyClosure(session, third);
    const refusal = new Error("lost the deploy lock (test)");
    await assert.rejects(
      activate(session, { toplevel: third, action: "switch", rollback: "on-failure", timeoutSeconds: 60, reconnect: open, startWhen: new Promise((_, reject) => setTimeout(() => reject(refusal), 300)) }),
      (err: unknown) => err === refusal,
    );
    assert.equal(await current(), next);
    assert.deepEqual(await switchDirs(), []);
  }));

test("a connection dropped while the activation waits for startWhen: it says nothing was started, and nothing was", () =>
  withCopied("sw-gated-dropped", async (session, next, before) => {
    const gate = deferred();
    const activation = activate(session, { toplevel: next, action: "switch", rollback: "on-failure", timeoutSeconds: 60, reconnect: open, startWhen: gate.promise });
    for (let i = 0; i < 100 && (await switchDirs()).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    session.close();
    setTimeout(gate.resolve, 200);
    const started = Date.now();
    await assert.rejects(activation, /the activation was not started: the connection dropped before it was; nothing was activated/);
    assert.ok(Date.now() - started < 10_000, "said at once, not after the activation's timeout");
    assert.equal(await current(), before);
    assert.deepEqual(await switchDirs(), []);
  }));

/**
 * Opens commands on `session` until `limit` of them run (the test hosts' MaxSessions): the
 * connection is full, and stays full while they sleep. A channel refused on the way (one the
 * connection still held a moment ago) is opened again, so the next one is surely refused.
 */
async function fillChannels(session: SshSession, limit: number): Promise<Promise<unknown>[]> {
  const running: Promise<unknown>[] = [];
  const deadline = Date.now() + 20_000;
  while (running.length < limit) {
    const wanted = limit - running.length;
    const opened = await Promise.all(
      Array.from({ length: wanted }, async () => {
        const up = deferred();
        const done = session.exec("echo up; exec sleep 30", { onStdout: () => up.resolve() });
        const ok = await Promise.race([up.promise.then(() => true), done.then(() => false, () => false)]);
        return ok ? { done: done.catch(() => undefined) } : undefined;
      }),
    );
    for (const command of opened) if (command) running.push(command.done);
    if (running.length < limit) {
      assert.ok(Date.now() < deadline, `only ${running.length} of ${limit} commands could run on one connection`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return running;
}

// Last: the cut-ssh system stays current, and rolling back to it would cut SSH again.
test("an activation that cuts SSH off still finishes, and its verdict is read over a new connection", async () => {
  const cutter = await buildTestSystem({ label: "sw-cut", variant: "cut-ssh" });
  const session = await open();
  const logs: string[] = [];
  const result = await switchTo(session, cutter, { log: (l) => logs.push(l) });
  session.close();
  assert.equal(await current(), cutter);
  assert.ok(result.generation >= 2);
  assert.ok(logs.some((l) => /reconnecting/.test(l)), logs.join("\n"));
});
