// Hosts whose system is a Nix expression, with the real Pulumi CLI: the program evaluates
// them (check answers from that), preview shows a changed system as an update with old and
// new store paths, and `up` realises the .drv found at evaluation and switches; with Nix 2.34
// as the deployer's Nix (test/harness/nix-versions.ts) the same, without a Nix warning.
// A flake host whose configuration reads its address from the program (specialArgs): a
// changed value previews as a switch; a value from a resource not created yet previews
// without failing, and `up` switches to the system holding it; a secret is refused.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
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

let flakeDir: string;

/**
 * A flake whose nixosConfigurations.web (the lib.nixosSystem double) reads `address` as a
 * module argument; it carries the test system's files, as a flake evaluates purely.
 */
function writeAddressFlake(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "special-args-flake-"));
  cpSync(path.dirname(SYSTEM_NIX), path.join(dir, "fixtures"), { recursive: true });
  cpSync(path.resolve(path.dirname(SYSTEM_NIX), "../vm/image"), path.join(dir, "vm/image"), { recursive: true });
  writeFileSync(path.join(dir, "flake.nix"), `{ outputs = { self }: {
    nixosConfigurations.web = import ./fixtures/nixos-system.nix {
      modules = [ ({ address, token ? null, ... }: {
        testSystem.label = "evale2e-sa-\${address}-${run}" + (if token == null then "" else "-\${token}");
      }) ];
    };
  }; }`);
  return dir;
}

/** What a cloud provider's VM resource is to a program: an address known once it is created. */
const vmProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Record<string, unknown>) {
    return { id: String(inputs["address"]), outs: { ipv4: inputs["address"] } };
  },
};

class TestVm extends pulumi.dynamic.Resource {
  declare readonly ipv4: pulumi.Output<string>;
  constructor(name: string, address: string) {
    super(vmProvider, name, { address, ipv4: undefined }, {});
  }
}

/** node0 runs the flake's configuration with the address the program gives; node1 stays. */
function flakeProgram(address: (() => pulumi.Input<string>) | { secret: string }) {
  return async () => {
    const [host0, host1] = hosts;
    const specialArgs = "secret" in address ? { address: "10.9.9.9", token: pulumi.secret(address.secret) } : { address: address() };
    const h = new NixosHost("node0", {
      connection: { host: host0!.address, privateKey: host0!.clientPrivateKey, hostKey: host0!.hostPublicKey },
      system: { flake: `${flakeDir}#web`, specialArgs },
    });
    new NixosHost("node1", {
      connection: { host: host1!.address, privateKey: host1!.clientPrivateKey, hostKey: host1!.hostPublicKey },
      system: { expression: { file: SYSTEM_NIX, args: { label: `evale2e-v1-${run}` } } },
    });
    return { toplevel0: h.toplevel };
  };
}

before(async () => {
  flakeDir = writeAddressFlake();
  const v1 = await buildTestSystem({ label: `evale2e-v1-${run}` });
  hosts = await startHosts(2, { name: "evale2e", state: "nixos", system: v1 });
  stack = await createTestStack("evaluation", program([`evale2e-v1-${run}`, `evale2e-v1-${run}`]));
});

after(async () => {
  await stack?.destroy().catch(() => undefined);
  await stack?.remove();
  await Promise.all((hosts ?? []).map((h) => h.stop()));
  if (flakeDir) rmSync(flakeDir, { recursive: true, force: true });
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

test("a flake's configuration reads its address from a resource not created yet: preview shows a switch to a system not known yet, up creates it and switches to the system holding the address", async () => {
  stack.setProgram(flakeProgram(() => new TestVm("vm0", "10.1.0.1").ipv4));
  const preview = await stack.preview();
  assert.equal(preview.changeSummary["create"], 1, stack.output());
  assert.equal(preview.changeSummary["update"], 1, stack.output());
  // The engine calls no diff for inputs not known yet: its own diff shows the switch to come.
  const current = (await hosts[0]!.run("readlink /run/current-system")).trim();
  assert.match(stack.lastOutput(), new RegExp(`~ toplevel\\s*: "${current}" => \\[unknown\\]`), stack.lastOutput());
  const up = await stack.up();
  assert.equal((await hosts[0]!.run("cat /etc/nixos-test-release")).trim(), `evale2e-sa-10.1.0.1-${run}`, stack.output());
  assert.equal((await hosts[0]!.run("readlink /run/current-system")).trim(), up.outputs["toplevel0"]?.value);
});

test("a changed specialArgs value previews as a switch to the system holding it", async () => {
  stack.setProgram(flakeProgram(() => "10.1.0.2"));
  const preview = await stack.preview();
  assert.equal(preview.changeSummary["update"], 1, stack.output());
  const previewText = stack.lastOutput();
  const current = (await hosts[0]!.run("readlink /run/current-system")).trim();
  assert.match(previewText, new RegExp(`~ toplevel\\s*: "${current}" => "/nix/store/[a-z0-9]{32}-nixos-system-test-evale2e-sa-10\\.1\\.0\\.2-${run}"`), previewText);
});

test("a secret in specialArgs is refused before anything is evaluated, naming the field and the keys input", async () => {
  const secret = `hunter2-${run}-${Date.now()}`;
  stack.setProgram(flakeProgram({ secret }));
  const text = await stack.preview().then(() => "", (err: Error) => err.message);
  assert.match(text, /system\.specialArgs\.token/, text);
  assert.match(text, /`keys` input/);
  assert.ok(![text, stack.output()].some((t) => t.includes(secret)), "the secret is in no output");
  assert.ok(!stack.stateFile().includes(secret));
  assert.deepEqual(readdirSync("/nix/store").filter((p) => p.includes(secret)), [], "nothing was evaluated into the store");
});
