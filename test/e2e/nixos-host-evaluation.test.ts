// Hosts whose system is a Nix expression, with the real Pulumi CLI: the program evaluates
// them (check answers from that), preview shows a changed system as an update with old and
// new store paths, and `up` realises the .drv found at evaluation and switches; with Nix 2.34
// as the deployer's Nix (test/harness/nix-versions.ts) the same, without a Nix warning.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NixosHost } from "nixos-pulumi";
import { startHosts, type TestHost } from "../harness/hosts";
import { buildTestSystem, SYSTEM_NIX } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { matrixEnds, withDeployerNix } from "../harness/nix-versions";

let hosts: TestHost[];
let stack: TestStack;
const run = `${process.pid}`;

function program(labels: string[]) {
  return async () => {
    const out: Record<string, unknown> = {};
    hosts.forEach((host, i) => {
      const h = new NixosHost(`node${i}`, {
        connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
        system: { expression: { file: SYSTEM_NIX, args: { label: labels[i]! } } },
      });
      out[`toplevel${i}`] = h.toplevel;
    });
    return out;
  };
}

before(async () => {
  const v1 = await buildTestSystem({ label: `evale2e-v1-${run}` });
  hosts = await startHosts(2, { name: "evale2e", state: "nixos", system: v1 });
  stack = await createTestStack("evaluation", program([`evale2e-v1-${run}`, `evale2e-v1-${run}`]));
});

after(async () => {
  await stack?.destroy().catch(() => undefined);
  await stack?.remove();
  await Promise.all((hosts ?? []).map((h) => h.stop()));
});

test("hosts sharing an expression system adopt with the evaluated toplevel and its .drv in the state", async () => {
  const up = await stack.up();
  const v1 = await buildTestSystem({ label: `evale2e-v1-${run}` });
  assert.equal(up.outputs["toplevel0"]?.value, v1, stack.output());
  assert.equal(up.outputs["toplevel1"]?.value, v1);
  for (const r of (await stack.resources()).filter((r) => r.type.endsWith("NixosHost"))) {
    assert.match(String(r.outputs?.["derivation"]), /^\/nix\/store\/[a-z0-9]{32}-nixos-system-test-evale2e-v1-.*\.drv$/);
    assert.equal(r.outputs?.["evaluation"], undefined, "the program's evaluation is not stored");
  }
});

test("a changed, unbuilt system previews as an update with both store paths, then is realised and switched", async () => {
  const label = `evale2e-v2-${run}-${Date.now()}`;
  stack.setProgram(program([`evale2e-v1-${run}`, label]));
  const preview = await stack.preview();
  assert.equal(preview.changeSummary["update"], 1, stack.output());
  assert.equal(preview.changeSummary["same"], 2, "the other host and the stack are unchanged");
  const v1 = await buildTestSystem({ label: `evale2e-v1-${run}` });
  const previewText = stack.output().split("===== pulumi preview =====").pop()!;
  const v2 = /\/nix\/store\/[a-z0-9]{32}-nixos-system-test-evale2e-v2-[0-9-]+(?![0-9-]|\.drv)/.exec(previewText)?.[0];
  assert.ok(v2 && previewText.includes(v1), `preview shows old and new toplevels:\n${previewText}`);

  const up = await stack.up();
  assert.equal(up.outputs["toplevel1"]?.value, v2, stack.output());
  assert.equal((await hosts[1]!.run("readlink /run/current-system")).trim(), v2);
  assert.equal((await hosts[1]!.run("cat /etc/nixos-test-release")).trim(), label);
  assert.equal((await hosts[0]!.run("readlink /run/current-system")).trim(), v1);
  assert.match(stack.output(), /build: realising/);
});

test("with Nix 2.34 as the deployer's Nix, the program and the provider process run it and Nix warns about nothing", async () => {
  const { newest } = matrixEnds();
  const logDir = mkdtempSync(path.join(os.tmpdir(), "nix-stderr-"));
  const log = path.join(logDir, "deployer.log");
  const label = `evale2e-v3-${run}-${Date.now()}`;
  stack.setProgram(program([label, `evale2e-v1-${run}`]));
  const up = await withDeployerNix(newest, () => stack.up(), log);
  const text = readFileSync(log, "utf8");
  rmSync(logDir, { recursive: true, force: true });
  assert.equal((await hosts[0]!.run("cat /etc/nixos-test-release")).trim(), label, stack.output());
  assert.equal((await hosts[0]!.run("readlink /run/current-system")).trim(), up.outputs["toplevel0"]?.value);
  assert.match(text, /^\$ nix .*path-info --json --json-format 2 /m, "the provider queried the closure with Nix 2.34");
  const warnings = text.split("\n").filter((l) => /warning|deprecated/i.test(l) && !/you did not specify '--add-root'/.test(l));
  assert.deepEqual(warnings, [], text);
});
