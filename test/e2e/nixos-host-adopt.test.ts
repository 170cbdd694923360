// NixosHost's everyday path with the real Pulumi CLI against test hosts: adopt, preview an
// update, switch, no-op, refresh drift, failed activation with rollback, reinstall trigger (a
// baseline first, then a replace).
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { NixosHost } from "nixos-pulumi";
import { startHost, installSystemDirectly, type TestHost } from "../harness/hosts";
import { buildTestSystem, UNIT_SCENARIO, UNIT_SCENARIO_JOBS } from "../harness/systems";
import { unitPlanLines } from "../../provider/host/unit-plan";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { startProxy, type TcpProxy } from "../harness/proxy";

let host: TestHost;
let proxy: TcpProxy;
let v1: string;
let v2: string;
let broken: string;
let stack: TestStack;

function program(system: string, triggers: Record<string, string> = {}) {
  return async () => {
    const h = new NixosHost("web", {
      connection: { host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { storePath: system },
      reinstallTriggers: triggers,
    });
    return { toplevel: h.toplevel, generation: h.generation, currentSystem: h.currentSystem };
  };
}

/** JSON paths of the values that contain `needle` (so a failure says where a secret leaked). */
function pathsContaining(value: unknown, needle: string, at = "$"): string[] {
  if (typeof value === "string") return value.includes(needle) ? [at] : [];
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => pathsContaining(v, needle, `${at}.${k}`));
  }
  return [];
}

async function onHost(command: string): Promise<string> {
  return (await host.run(command)).trim();
}

/** `pulumi preview` as a user runs it (no --diff): the output that shows the hosts' lines. */
async function previewOutput(): Promise<string> {
  let shown = "";
  await stack.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  return shown;
}

before(async () => {
  [v1, v2, broken] = await Promise.all([
    buildTestSystem({ label: "adopt-v1", unitFiles: UNIT_SCENARIO.before }),
    buildTestSystem({ label: "adopt-v2", unitFiles: UNIT_SCENARIO.after }),
    buildTestSystem({ label: "adopt-broken", variant: "fail" }),
  ]);
  host = await startHost({ state: "nixos", system: v1, name: "web" });
  proxy = await startProxy({ target: { host: host.address, port: host.port } });
  stack = await createTestStack("adopt", program(v1));
});

after(async () => {
  await stack?.destroy().catch(() => undefined);
  await stack?.remove();
  await proxy?.close();
  await host?.stop();
});

test("adopting a NixOS host records its state and pinned host key; its preview said that nothing is wiped", async () => {
  const shown = await previewOutput();
  assert.ok(shown.includes(`web: adopt: the machine must already run NixOS; switches it to ${v1} unless it runs it already. Nothing is wiped: no kexec, no disk is touched`), shown);
  assert.doesNotMatch(shown, /web: install|wipes /);
  const up = await stack.up();
  assert.doesNotMatch(stack.lastOutput(), /Nothing is wiped: no kexec/, "said by the preview only");
  assert.equal(up.outputs["toplevel"]?.value, v1, stack.output());
  assert.equal(up.outputs["currentSystem"]?.value, v1);
  assert.equal(await onHost("readlink /run/current-system"), v1);
  const web = (await stack.resources()).find((r) => r.type.endsWith("NixosHost"));
  assert.equal(web?.outputs?.["hostKey"], host.hostPublicKey);
});

test("the private key appears neither in the state nor in the engine's output", async () => {
  const state = stack.stateFile();
  const keyBody = host.clientPrivateKey.split("\n")[1]!;
  assert.ok(keyBody.length > 20);
  assert.deepEqual(pathsContaining(JSON.parse(state), keyBody), [], "private key in plain text in the state");
  assert.ok(!stack.output().includes(keyBody), "private key in the engine output");
  assert.match(state, /ciphertext/, "the key is stored encrypted");
});

test("a new system previews as an update of that host with old and new store paths, then switches", async () => {
  stack.setProgram(program(v2));
  const preview = await stack.preview();
  assert.equal(preview.changeSummary["update"], 1, stack.output());
  assert.equal(preview.changeSummary["replace"], undefined);
  assert.ok(stack.output().includes(v1) && stack.output().includes(v2), "preview shows both toplevels");
  assert.doesNotMatch(stack.output(), /^\s+[-+~]?\s*(resourceName|stack|__\w+)\s*:/m, "no internal input in the --diff view");
  // What changes inside, in the default preview: the units the switch will stop, start,
  // restart or reload.
  let shown = "";
  await stack.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  const unitLines = unitPlanLines(v1, v2);
  assert.ok(unitLines.some((l) => l.startsWith("would restart the following units: ")), unitLines.join("\n"));
  for (const line of unitLines) assert.ok(shown.includes(`web: ${line}`), `${line}\n${shown}`);

  const generationBefore = Number(await onHost("readlink /nix/var/nix/profiles/system | sed 's/system-\\([0-9]*\\)-link/\\1/'"));
  const up = await stack.up();
  assert.equal(up.outputs["toplevel"]?.value, v2, stack.output());
  assert.equal(await onHost("readlink /run/current-system"), v2);
  assert.equal(await onHost("cat /etc/nixos-test-release"), "adopt-v2");
  assert.equal(await onHost("cat /run/test-service.label"), "adopt-v2");
  await onHost("kill -0 $(cat /run/test-service.pid)");
  assert.equal(Number(up.outputs["generation"]?.value), generationBefore + 1);
  // The switch did to the units what the preview said, unit by unit.
  const jobs = (await onHost("sed -n '/^switch /h; /^switch /!H; ${x;p}' /run/systemd-double/jobs")).split("\n").slice(1);
  const did = (job: string) => jobs.filter((j) => j.startsWith(`${job} `)).map((j) => j.slice(job.length + 1)).filter((u) => !u.endsWith(".target")).sort();
  assert.deepEqual(
    { stop: did("stop"), reload: did("reload"), restart: did("restart"), start: did("start") },
    { stop: UNIT_SCENARIO_JOBS.stop, reload: UNIT_SCENARIO_JOBS.reload, restart: UNIT_SCENARIO_JOBS.restart, start: UNIT_SCENARIO_JOBS.start },
    jobs.join("\n"),
  );
});

test("a second up changes nothing and opens no SSH connection", async () => {
  const before = proxy.connectionCount();
  const up = await stack.up();
  assert.equal(up.summary.resourceChanges?.["update"], undefined, stack.output());
  assert.equal(proxy.connectionCount(), before, "no SSH connection during a no-op up");
});

test("refresh reports drift after the host was switched by hand", async () => {
  await installSystemDirectly(host, v1);
  const refresh = await stack.refresh();
  assert.equal(refresh.summary.resourceChanges?.["update"], 1, stack.output());
  const resources = await stack.resources();
  const web = resources.find((r) => r.type.endsWith("NixosHost"));
  assert.equal(web?.outputs?.["currentSystem"], v1);
  // The default preview says why the host will be switched.
  let shown = "";
  await stack.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  assert.ok(shown.includes(`web: drift: running ${v1} (changed outside Pulumi), declared ${v2}: the update switches it back`), shown);
  assert.doesNotMatch(shown, /resourceName|__stack/);
  // The next up switches it back to what the program declares.
  const up = await stack.up();
  assert.equal(up.outputs["currentSystem"]?.value, v2, stack.output());
  assert.equal(await onHost("readlink /run/current-system"), v2);
});

test("a failing activation fails the up with its output, rolls the host back and keeps the state", async () => {
  stack.setProgram(program(broken));
  await assert.rejects(stack.up(), (err: Error) => {
    assert.match(err.message, /Activation script snippet 'etc' failed/);
    assert.match(err.message, /rolled back/i);
    return true;
  });
  assert.equal(await onHost("readlink /run/current-system"), v2);
  const web = (await stack.resources()).find((r) => r.type.endsWith("NixosHost"));
  assert.equal(web?.outputs?.["toplevel"], v2, "the state still says the previous toplevel");
});

test("reinstallTriggers added to a host that had none record a baseline; a changed value previews as a replace", async () => {
  stack.setProgram(program(v2, { vm: "i-1" }));
  const baseline = await stack.up();
  assert.equal(baseline.summary.resourceChanges?.["replace"], undefined, stack.output());
  assert.equal(await onHost("readlink /run/current-system"), v2);
  stack.setProgram(program(v2, { vm: "i-2" }));
  // The default output (no --diff), as a user runs `pulumi preview`.
  let shown = "";
  const preview = await stack.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  assert.equal(preview.changeSummary["replace"], 1, shown);
  assert.match(shown, /web: re-adopt \(reinstallTriggers\.vm i-1 → i-2\): forgets the host and adopts it again, .*no disk is touched/);
});
