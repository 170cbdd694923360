// A provider upgrade never changes a host by itself: the state earlier versions of this
// package wrote (test/fixtures/state/<commit>.json, with each version's serialized provider,
// state shape and layout hashes) is imported into a stack whose program declares the same
// host and layout; this version previews it as no change, refreshes it into the current shape
// (still no change), and the host is not touched: same generation, nothing activated.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { DiskLayout, NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { LAYOUT } from "../fixtures/state/layout";
import { NIXOS_HOST_STATE_VERSION } from "../../provider/resources/nixos-host-state";
import { DISK_LAYOUT_STATE_VERSION } from "../../provider/resources/disk-layout-impl";

// <n>-<commit>.json, oldest first.
const FIXTURES = path.resolve(__dirname, "..", "..", "..", "test", "fixtures", "state");

interface Fixture {
  commit: string;
  resources: { type: string; id: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }[];
}

let host: TestHost;
let v1: string;
let stack: TestStack;

before(async () => {
  v1 = await buildTestSystem({ label: "state-v1" });
  host = await startHost({ name: "upgraded", state: "nixos", system: v1 });
  stack = await createTestStack("state-upgrade", program(false));
});

/** The program of every fixture: the host installed with LAYOUT (adopted, for the first up: a test host cannot be installed onto). */
const program = (installed: boolean, switchTimeoutSeconds?: number) => async () => {
  const disks = new DiskLayout("disks", LAYOUT);
  new NixosHost("web", {
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: v1 },
    ...(installed ? { diskLayout: disks } : {}),
    ...(switchTimeoutSeconds ? { switch: { timeoutSeconds: switchTimeoutSeconds } } : {}),
  });
  return {};
};
after(async () => {
  await stack?.remove();
  await host?.stop();
});

const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).sort();

/** The fixture's resources in this stack: its run's values replaced by this run's. */
async function importFixture(fixture: Fixture): Promise<void> {
  const exported = await stack.stack.exportStack();
  const resources = exported.deployment.resources as { type: string; urn: string; id?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[];
  const current = resources.find((r) => r.type.endsWith("NixosHost"))!;
  const kernel = (await host.run("readlink -f /run/booted-system/kernel")).trim();
  const fill = (value: unknown) =>
    JSON.parse(
      JSON.stringify(value)
        .split('"@@CONNECTION@@"').join(JSON.stringify(current.inputs!["connection"]))
        .split("@@STACK@@").join("test-state-upgrade/test")
        .split("@@TOPLEVEL@@").join(v1)
        .split("@@ADDRESS@@").join(host.address)
        .split("@@HOST_KEY@@").join(host.hostPublicKey)
        .split("@@KERNEL@@").join(kernel),
    );
  for (const recorded of fixture.resources) {
    const target = resources.find((r) => r.type.endsWith(`:${recorded.type}`))!;
    Object.assign(target, { id: fill(recorded.id), inputs: fill(recorded.inputs), outputs: fill(recorded.outputs) });
  }
  await stack.stack.importStack(exported);
}

test("the stack's resources exist (this version adopts the host), then the older states replace them", async () => {
  const up = await stack.up();
  assert.equal(up.summary.result, "succeeded", stack.output());
  // A host an older version deployed has no owner record.
  await host.run("rm -f /nix/var/nixos-pulumi/owner");
  stack.setProgram(program(true));
});

const unchanged = (summary: Record<string, number>) => Object.entries(summary).filter(([kind, n]) => kind !== "same" && n > 0);

for (const file of fixtures) {
  test(`state written by ${file.replace(/\.json$/, "")}: previews as no change, refreshes into this version's shape, the host untouched`, async () => {
    const fixture = JSON.parse(readFileSync(path.join(FIXTURES, file), "utf8")) as Fixture;
    const generation = (await host.run("readlink /nix/var/nix/profiles/system")).trim();
    const service = (await host.run("cat /run/test-service.pid")).trim();
    await importFixture(fixture);

    const preview = await stack.preview();
    assert.deepEqual(unchanged(preview.changeSummary), [], stack.lastOutput());

    await stack.refresh();
    const resources = await stack.resources();
    const web = resources.find((r) => r.type.endsWith("NixosHost"))!.outputs!;
    const disks = resources.find((r) => r.type.endsWith("DiskLayout"))!.outputs!;
    assert.equal(web["stateVersion"], NIXOS_HOST_STATE_VERSION, stack.lastOutput());
    assert.equal(web["currentSystem"], v1);
    assert.equal(web["toplevel"], v1);
    assert.equal(web["hostKey"], host.hostPublicKey);
    assert.equal(web["needsReboot"], false);
    assert.equal(web["__resourceName"], "web");
    assert.equal(web["managedBy"], undefined);
    // Refresh runs the serialized provider the state holds: the first versions' DiskLayout
    // provider has no `read`, so its state stays as it was (still no change; an update rewrites it).
    const recordedDisks = fixture.resources.find((r) => r.type === "DiskLayout")!.outputs;
    if (/\bread: __f\d+/.test(String(recordedDisks["__provider"]))) {
      assert.equal(disks["stateVersion"], DISK_LAYOUT_STATE_VERSION);
      assert.equal(typeof disks["formatHash"], "string");
    } else {
      assert.equal(disks["stateVersion"], recordedDisks["stateVersion"]);
    }

    const again = await stack.preview();
    assert.deepEqual(unchanged(again.changeSummary), [], stack.lastOutput());
    assert.equal((await host.exec("test -e /nix/var/nixos-pulumi/owner")).code, 1, "refresh and preview wrote nothing on the host");
    assert.equal((await host.run("readlink /nix/var/nix/profiles/system")).trim(), generation, "no new generation");
    assert.equal((await host.run("readlink /run/current-system")).trim(), v1);
    assert.equal((await host.run("cat /run/test-service.pid")).trim(), service, "no activation");
  });
}

test(`an update of the oldest state (${fixtures[0]}) for a setting that runs nothing on the machine switches nothing`, async () => {
  const fixture = JSON.parse(readFileSync(path.join(FIXTURES, fixtures[0]!), "utf8")) as Fixture;
  const generation = (await host.run("readlink /nix/var/nix/profiles/system")).trim();
  const service = (await host.run("cat /run/test-service.pid")).trim();
  await importFixture(fixture);
  stack.setProgram(program(true, 300));
  const up = await stack.up();
  assert.equal(up.summary.resourceChanges?.["update"], 1, stack.lastOutput());
  assert.match(stack.lastOutput(), /web: update: switch changed; nothing runs on the machine/);
  assert.equal((await host.run("readlink /nix/var/nix/profiles/system")).trim(), generation, "no new generation");
  assert.equal((await host.run("cat /run/test-service.pid")).trim(), service, "no activation: the service was not restarted");
  const web = (await stack.resources()).find((r) => r.type.endsWith("NixosHost"))!.outputs!;
  assert.equal(web["stateVersion"], NIXOS_HOST_STATE_VERSION);
});
