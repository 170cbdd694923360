// `pulumi up` SIGKILLed (the CLI and every process it started, as when a CI job is
// cancelled) during the copy, during the activation, during an adopt (a create) and during
// an install's install phase: the host ends consistent and the next `pulumi up` converges
// without a manual state edit (and an install resumes on its formatted disks).
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { execa } from "execa";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { tutorialLayout } from "../fixtures/layouts";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { startProxy, type TcpProxy } from "../harness/proxy";
import { lockHost } from "../../provider/host/lock";
import { nixosHostSchema } from "../../provider/schema/nixos-host";

let host: TestHost;
let proxy: TcpProxy;
let stack: TestStack;
let v1: string;
let big: string;
let slow: string;
let adopted: string;

function program(system: string, healthChecks: string[] = []) {
  return async () => {
    const h = new NixosHost("victim", {
      connection: { host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { storePath: system },
      switch: { healthChecks },
    });
    return { toplevel: h.toplevel, currentSystem: h.currentSystem };
  };
}

async function children(pid: number): Promise<number[]> {
  const { stdout } = await execa("pgrep", ["-P", String(pid)], { reject: false });
  return stdout.split("\n").filter(Boolean).map(Number);
}

async function tree(pid: number): Promise<number[]> {
  const out = [pid];
  for (const child of await children(pid)) out.push(...(await tree(child)));
  return out;
}

/** SIGKILLs the Pulumi CLI this process started and everything under it, all at once. */
async function killPulumi(): Promise<number> {
  const cli = [];
  for (const pid of await children(process.pid)) {
    const comm = (() => {
      try {
        return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      } catch {
        return "";
      }
    })();
    if (comm === "pulumi") cli.push(pid);
  }
  assert.equal(cli.length, 1, "exactly one pulumi CLI runs");
  const pids = await tree(cli[0]!);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  return pids.length;
}

/** Starts an up, waits until the engine output matches `when`, then kills the CLI. */
async function upKilledWhen(when: RegExp, on: TestStack = stack, kill: () => Promise<unknown> = killPulumi): Promise<void> {
  const from = on.output().length;
  const running = on.up();
  running.catch(() => undefined);
  const deadline = Date.now() + 120_000;
  while (!when.test(on.output().slice(from))) {
    if (Date.now() > deadline) throw new Error(`never saw ${when}\n${on.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await kill();
  await assert.rejects(running);
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
};

/** What killCliOnly left: the processes the CLI had started, with their command lines. */
let orphans: Array<{ pid: number; cmdline: string }> = [];

/**
 * SIGKILLs the Pulumi CLI process alone, as a cancelled CI job or a closed laptop ends it:
 * the processes it started (the provider in its own process group, its copy process) are
 * left to notice by themselves. Returns the provider's processes.
 */
async function killCliOnly(): Promise<number[]> {
  const cli = (await children(process.pid)).filter((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "pulumi");
  assert.equal(cli.length, 1, "exactly one pulumi CLI runs");
  orphans = (await tree(cli[0]!)).slice(1).map((pid) => ({ pid, cmdline: cmdline(pid) }));
  const provider = orphans.filter((p) => /dynamic-provider|copy\/child\.js/.test(p.cmdline)).map((p) => p.pid);
  assert.ok(provider.length > 0, `the provider runs under the CLI: ${JSON.stringify(orphans)}`);
  process.kill(cli[0]!, "SIGKILL");
  return provider;
}

/** Ends what the killed CLI started and still runs (by pid, only if it is still that process). */
function endOrphans() {
  for (const { pid, cmdline: was } of orphans) {
    if (cmdline(pid) === was && was) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  orphans = [];
}

/** Waits up to `seconds` for the processes to exit; returns those still running. */
async function exitWithin(pids: number[], seconds: number): Promise<number[]> {
  const deadline = Date.now() + seconds * 1000;
  let running = pids;
  while ((running = running.filter((pid) => cmdline(pid) !== "")).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return running;
}

/**
 * What the README tells users after a killed `pulumi up`: the file backend keeps the dead
 * CLI's lock, which `pulumi cancel` removes; then `pulumi up` converges.
 */
async function cancelThenUp(on: TestStack = stack) {
  await assert.rejects(on.up(), /the stack is currently locked by 1 lock\(s\)[\s\S]*pulumi cancel/);
  await on.stack.cancel();
  return on.up();
}

const onHost = async (command: string) => (await host.run(command)).trim();

before(async () => {
  [v1, adopted, big, slow] = await Promise.all([
    buildTestSystem({ label: "killed-v1" }),
    buildTestSystem({ label: "killed-adopted" }),
    buildTestSystem({ label: "killed-big", fillerCount: 16, fillerBytes: 32 * 1024 * 1024 }),
    buildTestSystem({ label: "killed-slow" }),
  ]);
  host = await startHost({ name: "victim", state: "nixos", system: v1 });
  proxy = await startProxy({ target: { host: host.address, port: host.port } });
  stack = await createTestStack("killed", program(v1));
});

after(async () => {
  await stack?.remove();
  await proxy?.close();
  await host?.stop();
});

test("killed during an adopt (a pending create): the next up adopts the host", async () => {
  // The adopt's activation is held by a slow health check, so the kill lands inside create.
  stack.setProgram(program(adopted, ["sleep 3"]));
  await upKilledWhen(/activate: switch/);
  const up = await cancelThenUp();
  assert.equal(up.outputs["currentSystem"]?.value, adopted, stack.output());
  assert.equal(await onHost("readlink /run/current-system"), adopted);
  const hosts = (await stack.resources()).filter((r) => r.type.endsWith("NixosHost"));
  assert.equal(hosts.length, 1, "one host in the state, not a duplicate");
  // The interrupted create stays listed as pending (every later up warns about it) until
  // `pulumi refresh --clear-pending-creates` drops it; the host itself stays recorded.
  assert.match(stack.output(), /pending operations from previous deployment[\s\S]*victim, interrupted while creating/);
  await stack.stack.refresh({ clearPendingCreates: true, color: "never" });
  const pending = (await stack.stack.exportStack()).deployment?.pending_operations ?? [];
  assert.deepEqual(pending, []);
});

test("killed during the copy: the host still runs the old system, its store verifies, the next up converges", async () => {
  stack.setProgram(program(big));
  proxy.setRate(2 * 1024 * 1024);
  await upKilledWhen(/copy: \d+\/\d+ paths, /);
  proxy.setRate(0);
  assert.equal(await onHost("readlink /run/current-system"), adopted, "nothing was activated");
  // Whatever arrived is either a complete, valid path or absent: nothing half-registered.
  await onHost("nix-store --verify --check-contents");
  const from = stack.output().length;
  const up = await cancelThenUp();
  assert.equal(up.outputs["currentSystem"]?.value, big, stack.output());
  // The killed deployer's lease is not waited out: its process no longer runs on this machine.
  assert.match(stack.output().slice(from), /lock: the deploy lock on \S+ is held by stack \S+, resource victim from \S+ \(pid \d+, started \S+\), a process of this machine that no longer runs; taking it over/);
  assert.equal(await onHost("readlink /run/current-system"), big);
  await onHost(`nix-store --verify-path $(nix-store -qR ${big})`);
});

test("killed during the activation: the detached activation finishes, the next up converges", async () => {
  stack.setProgram(program(slow, ["sleep 3"]));
  await upKilledWhen(/activate: switch/);
  // The activation runs on, detached from the dead deployer, and completes.
  for (let i = 0; i < 100 && (await onHost("readlink /run/current-system")) !== slow; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await onHost("readlink /run/current-system"), slow);
  const up = await cancelThenUp();
  assert.equal(up.outputs["currentSystem"]?.value, slow, stack.output());
  assert.equal(up.outputs["toplevel"]?.value, slow);
  assert.equal(await onHost("readlink /run/current-system"), slow);
  assert.equal(await onHost("cat /run/test-service.label"), "killed-slow");
});

test("the CLI alone SIGKILLed during the copy: its provider stops the copy, lets go of the lock and exits; the next up gets the lock at once and sends only what is missing", async (t) => {
  t.after(endOrphans);
  const bigger = await buildTestSystem({ label: "killed-cli-copy", fillerCount: 8, fillerBytes: 8 * 1024 * 1024 });
  stack.setProgram(program(bigger));
  proxy.setRate(2 * 1024 * 1024);
  let provider: number[] = [];
  const killedFrom = stack.output().length;
  // Killed once a path was registered and more were under way.
  await upKilledWhen(/copy: [1-9]\d*\/\d+ paths, /, stack, async () => (provider = await killCliOnly()));
  const before = /copy: (\d+) of \d+ paths missing on the target/.exec(stack.output().slice(killedFrom));
  assert.ok(before, stack.output());
  const stillRunning = await exitWithin(provider, 10);
  proxy.setRate(0);
  assert.deepEqual(stillRunning, [], `the provider and its copy process exited: ${stillRunning.map(cmdline).join("; ")}`);
  assert.notEqual(await onHost("readlink /run/current-system"), bigger, "nothing was activated");
  assert.match(await onHost("cat /run/nixos-pulumi/deploy.lock.owner"), /^\S+ 0 /, "the lock was released, not left to its lease");
  await onHost("nix-store --verify --check-contents");
  const closure = (await execa("nix-store", ["-qR", bigger])).stdout;
  const missing = (await host.run("xargs -r nix-store --check-validity --print-invalid", closure + "\n")).split("\n").filter(Boolean).length;
  const from = stack.output().length;
  const up = await cancelThenUp();
  const output = stack.output().slice(from);
  assert.equal(up.outputs["currentSystem"]?.value, bigger, output);
  assert.doesNotMatch(output, /is being deployed by|taking it over/, "the lock was free at once");
  const copied = /copy: (\d+) of (\d+) paths missing on the target/.exec(output);
  assert.ok(copied, output);
  assert.equal(Number(copied[1]), missing, "only the paths not registered before the kill are sent");
  assert.ok(missing < Number(before[1]), "some paths had arrived before the kill");
});

test("the CLI alone SIGKILLed while its provider waits for the lock: the provider stops waiting and exits, and never takes the lock", async (t) => {
  t.after(endOrphans);
  const waiting = await buildTestSystem({ label: "killed-cli-wait" });
  // Another deployer holds the machine: this test process, through the provider's own lock.
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: waiting },
  });
  const held = await lockHost(spec, host.hostPublicKey, "the test's other deployer", () => {});
  let provider: number[] = [];
  try {
    stack.setProgram(program(waiting));
    await upKilledWhen(/is being deployed by the test's other deployer/, stack, async () => (provider = await killCliOnly()));
    assert.deepEqual(await exitWithin(provider, 10), [], "the provider exited");
    // Its wait on the machine (the lock script on its SSH channel) ends with it ("[v]": not
    // the shell running pgrep).
    const waiter = () => host.exec("pgrep -f \"HOLDER='stack test-killed/test, resource [v]ictim\"").then((r) => r.stdout.trim());
    for (let i = 0; i < 50 && (await waiter()) !== ""; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await waiter(), "", "the provider's wait for the lock on the machine ended");
  } finally {
    await held.release();
  }
  // Had the killed deployer's wait on the machine gone on, it would take the freed lock now.
  await new Promise((r) => setTimeout(r, 2000));
  assert.match(await onHost("cat /run/nixos-pulumi/deploy.lock.owner"), /^\S+ 0 \d+ \d+ the test's other deployer/, "nobody took the lock after the test released it");
  const from = stack.output().length;
  const up = await cancelThenUp();
  assert.equal(up.outputs["currentSystem"]?.value, waiting, stack.output());
  assert.doesNotMatch(stack.output().slice(from), /is being deployed by/);
});

test("killed during an install's install phase: the next up resumes on the formatted disks and completes", async (t) => {
  const fresh = await startHost({ name: "fresh", state: "installer", disks: [{ name: "vda", sizeMiB: 1024 }] });
  const door = await startProxy({ target: { host: fresh.address, port: fresh.port } });
  const install = await createTestStack("killed-install", async () => {
    const layout = new DiskLayout("disk", tutorialLayout("/dev/vda", "ext4", "ext4") as never);
    const h = new NixosHost("fresh", {
      connection: { host: door.address, port: door.port, privateKey: fresh.clientPrivateKey, hostKey: fresh.hostPublicKey },
      system: { storePath: big },
      diskLayout: layout,
      install: { phases: ["disko", "install"] },
    });
    return { toplevel: h.toplevel };
  });
  t.after(async () => {
    await fresh.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
    await install.remove();
    await door.close();
    await fresh.stop();
  });
  door.setRate(2 * 1024 * 1024);
  await upKilledWhen(/install: copying the closure/, install);
  door.setRate(0);
  const from = install.output().length;
  const up = await cancelThenUp(install);
  assert.equal(up.outputs["toplevel"]?.value, big, install.output());
  assert.match(install.output().slice(from), /disks already hold this layout/, "resumed without wiping");
  assert.equal((await fresh.run("readlink -f /mnt/nix/var/nix/profiles/system")).trim(), big);
  await fresh.run(`nix-store --store /mnt --verify-path $(nix-store -qR ${big})`);
});
