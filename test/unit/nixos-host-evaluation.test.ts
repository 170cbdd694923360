// Evaluation once: the program evaluates a host's system and hands the result to `check`,
// which answers from it without evaluating again; building realises the .drv found then.
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { check } from "../../provider/resources/nixos-host-impl";
import { buildToplevel, evaluateInProgram, evaluateSystem } from "../../provider/nix";
import * as pulumi from "@pulumi/pulumi";
import { lockedUrl } from "../../provider/nix/flake-special-args";
import { systemFileSystems } from "../../provider/host/layout-agreement";
import { refusedSystemFields } from "../../provider/resources/system-secrets";
import { UNKNOWN } from "../../provider/util/unknown";
import { generateKeyPair, type KeyPair } from "../harness/keys";
import { nixVersions, withDeployerNix } from "../harness/nix-versions";

let key: KeyPair;
let dir: string;
const unique = `${process.pid}-${Date.now()}`;

/** A system expression whose toplevel is not built yet (a fresh name every run). */
function writeSystem(name: string, body = `derivation { name = "eval-${name}-${unique}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ${name} > $out" ]; }`): string {
  const file = path.join(dir, `${name}.nix`);
  writeFileSync(file, body);
  return file;
}

const inputs = (system: unknown, evaluation?: unknown) => ({
  connection: { host: "127.0.0.1", privateKey: key.privateKey },
  system,
  ...(evaluation === undefined ? {} : { evaluation }),
});

before(async () => {
  key = await generateKeyPair("evaluation");
  dir = mkdtempSync(path.join(os.tmpdir(), "evaluation-"));
});

test("evaluating finds the toplevel and its .drv without building it", async () => {
  const file = writeSystem("unbuilt");
  const { toplevel, derivation } = await evaluateSystem({ expression: { file } });
  assert.match(toplevel, /^\/nix\/store\/[a-z0-9]{32}-eval-unbuilt-/);
  assert.ok(derivation && existsSync(derivation), "the .drv is in the store, ready to realise");
  assert.ok(!existsSync(toplevel), "evaluation built nothing");
  const expected = (await execa("nix-instantiate", ["--eval", "--json", file, "-A", "outPath"])).stdout;
  assert.equal(JSON.stringify(toplevel), expected);
});

test("check answers from the program's evaluation: it does not evaluate again", async () => {
  const file = writeSystem("handed");
  const handed = await evaluateInProgram({ expression: { file } });
  assert.ok(handed, "the program evaluated the system");
  // Were check to evaluate, this file would now fail.
  writeFileSync(file, 'throw "evaluated twice"');
  const { inputs: checked } = await check({}, inputs({ expression: { file } }, handed));
  assert.equal(checked!["toplevel"], handed.toplevel);
  assert.equal(checked!["derivation"], handed.derivation);
  assert.equal(checked!["evaluation"], undefined, "the handed-in evaluation is not kept in the state");
});

test("check evaluates itself when the handed-in evaluation is for another system or inconsistent", async () => {
  const a = writeSystem("a");
  const b = writeSystem("b");
  const forA = (await evaluateInProgram({ expression: { file: a } }))!;
  const forB = (await evaluateInProgram({ expression: { file: b } }))!;
  const truth = await evaluateSystem({ expression: { file: b } });
  for (const wrong of [forA, { ...forB, toplevel: forA.toplevel }, { ...forB, derivation: forA.derivation }, "junk"]) {
    const { inputs: checked } = await check({}, inputs({ expression: { file: b } }, wrong));
    assert.equal(checked!["toplevel"], truth.toplevel);
  }
});

test("a failed evaluation in the program is reported by check, naming the field", async () => {
  const file = writeSystem("broken", '{ }: throw "option fileSystems is used but not defined"');
  assert.equal(await evaluateInProgram({ expression: { file } }), undefined);
  const text = ((await check({}, inputs({ expression: { file } }, undefined))).failures ?? []).map((f) => f.reason).join("\n");
  assert.match(text, /system\.expression/);
  assert.match(text, /fileSystems is used but not defined/);
});

test("building realises the .drv found at evaluation, without evaluating again", async () => {
  const file = writeSystem("realise");
  const { toplevel } = await evaluateSystem({ expression: { file } });
  writeFileSync(file, 'throw "evaluated twice"');
  assert.equal(await buildToplevel({ expression: { file } }), toplevel);
  assert.ok(existsSync(toplevel));
});

test("hosts sharing a system share one evaluation", async () => {
  const file = writeSystem("shared");
  const first = evaluateSystem({ expression: { file, args: { n: 1 } } });
  const second = evaluateSystem({ expression: { args: { n: 1 }, file } });
  assert.equal(first, second);
  assert.notEqual(first, evaluateSystem({ expression: { file, args: { n: 2 } } }));
  await Promise.all([first, evaluateSystem({ expression: { file, args: { n: 2 } } })].map((p) => p.catch(() => undefined)));
});

test("a flake system evaluates to its toplevel and .drv in one nix process, and realises", async () => {
  const flake = path.join(dir, "flake");
  mkdirSync(flake);
  writeFileSync(path.join(flake, "flake.nix"), `{ outputs = { self }: { nixosConfigurations.web.config.system.build.toplevel =
    derivation { name = "eval-flake-${unique}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo flake > $out" ]; }; }; }`);
  const { toplevel, derivation } = await evaluateSystem({ flake: `${flake}#web` });
  assert.match(toplevel, /-eval-flake-/);
  assert.ok(derivation && existsSync(derivation));
  assert.equal(await buildToplevel({ flake: `${flake}#web` }), toplevel);
});

test("hosts of one expression file, evaluated together in batches, get what nix-instantiate gives each", async () => {
  const file = writeSystem("batch", `{ label, n ? 0, flag ? false, attrs ? false, note ? "" }:
    let d = derivation { name = "eval-batch-\${label}-\${toString n}-\${if flag then "y" else "n"}-${unique}"; system = "x86_64-linux"; inherit note; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
    in if attrs then { inner.toplevel = d; } else d`);
  const hosts: { file: string; attr?: string; args: Record<string, string | number | boolean> }[] = [
    { file, args: { label: "a" } },
    { file, args: { label: "b", n: 2 } },
    { file, args: { label: "c", flag: true, note: 'x\${y}\\"z' } },
    { file, args: { label: "d", attrs: true }, attr: "inner.toplevel" },
    { file, args: { label: "e", n: -3 } },
  ];
  const results = await Promise.all(hosts.map((expression) => evaluateSystem({ expression })));
  for (const [i, expression] of hosts.entries()) {
    const args = Object.entries(expression.args).flatMap(([k, v]) => (typeof v === "string" ? ["--argstr", k, v] : ["--arg", k, String(v)]));
    const drv = (await execa("nix-instantiate", [file, ...(expression.attr ? ["-A", expression.attr] : []), ...args])).stdout.trim();
    assert.equal(results[i]!.derivation, drv, `host ${i}`);
    assert.ok(existsSync(drv));
  }
});

test("a host whose evaluation fails in a batch fails alone, with its own error", async () => {
  const file = writeSystem("batch-bad", `{ label }: if label == "bad" then throw "host bad: option fileSystems is not defined"
    else derivation { name = "eval-batchbad-\${label}-${unique}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`);
  const [good1, bad, good2] = (await Promise.allSettled(["g1", "bad", "g2"].map((label) => evaluateSystem({ expression: { file, args: { label } } })))) as [PromiseSettledResult<{ toplevel: string }>, PromiseSettledResult<unknown>, PromiseSettledResult<unknown>];
  assert.equal(good1.status, "fulfilled");
  assert.equal(good2.status, "fulfilled");
  assert.match((good1 as PromiseFulfilledResult<{ toplevel: string }>).value.toplevel, /-eval-batchbad-g1-/);
  assert.equal(bad.status, "rejected");
  assert.match(String((bad as PromiseRejectedResult).reason), /host bad: option fileSystems is not defined/);
  assert.match(String((bad as PromiseRejectedResult).reason), /system\.expression/);
});

test("the program leaves malformed systems to check, and hands a system with unset fields to it", async () => {
  const file = writeSystem("shape");
  for (const bad of [
    { expression: { file, args: { nested: { x: 1 } } } },
    { expression: { file, extra: 1 } },
    { expression: { file: "" } },
    { flake: "no-attribute" },
    { flake: `${dir}#web`, storePath: "/nix/store/x" },
    {},
    "junk",
  ]) {
    assert.equal(await evaluateInProgram(bad), undefined, JSON.stringify(bad));
  }
  const text = ((await check({}, inputs({ expression: { file, args: { nested: { x: 1 } } } }))).failures ?? []).map((f) => `${f.property}: ${f.reason}`).join("\n");
  assert.match(text, /system/, "check names the field");
  // Unset optional fields (as a program passes them) hash like the values check receives.
  const handed = await evaluateInProgram({ expression: { file, attr: undefined, args: undefined } });
  assert.ok(handed);
  writeFileSync(file, 'throw "evaluated twice"');
  const { inputs: checked } = await check({}, inputs({ expression: { file } }, handed));
  assert.equal(checked!["toplevel"], handed.toplevel);
});

/** A flake whose configuration's toplevel holds the specialArgs it was extended with, as JSON. */
function specialArgsFlake(name: string): string {
  const flake = path.join(dir, name);
  mkdirSync(flake);
  writeFileSync(path.join(flake, "flake.nix"), `{ outputs = { self }: let
    mk = args: { config.system.build.toplevel = derivation { name = "eval-sa-${name}-${unique}"; system = "x86_64-linux"; builder = "/bin/sh";
      json = builtins.toJSON args; args = [ "-c" "printf %s \\"$json\\" > $out" ]; };
      extendModules = { modules ? [ ], specialArgs ? { }, prefix ? [ ] }: mk (args // specialArgs); };
    in { nixosConfigurations.web = mk { fromFlake = true; }; }; }`);
  return flake;
}

test("a flake's configuration gets specialArgs verbatim, through extendModules, with every Nix of the matrix", async () => {
  const flake = specialArgsFlake("sa-matrix");
  const specialArgs = { address: "10.0.0.7", tricky: 'a ${b} "c" \\d \'\'e', list: [1, 2.5, true, null, { x: "é" }], nested: { volumes: ["vol-1"] } };
  const outs = new Set<string>();
  for (const nix of nixVersions()) {
    const { toplevel, derivation } = await withDeployerNix(nix, () => evaluateSystem({ flake: `${flake}#web`, specialArgs: { ...specialArgs, v: nix.name } }));
    assert.ok(derivation && existsSync(derivation), `Nix ${nix.name}`);
    const built = await buildToplevel({ flake: `${flake}#web`, specialArgs: { ...specialArgs, v: nix.name } });
    assert.equal(built, toplevel);
    assert.deepEqual(JSON.parse(readFileSync(toplevel, "utf8")), { fromFlake: true, ...specialArgs, v: nix.name }, `Nix ${nix.name}`);
    outs.add(toplevel);
  }
  assert.equal(outs.size, nixVersions().length, "another value, another toplevel");
  const plain = await buildToplevel({ flake: `${flake}#web` });
  assert.deepEqual(JSON.parse(readFileSync(plain, "utf8")), { fromFlake: true }, "without specialArgs, the configuration as the flake gives it");
});

test("a flake in a Git tree with uncommitted changes takes specialArgs too (locked by its NAR hash)", async () => {
  const flake = specialArgsFlake("sa-git");
  await execa("git", ["init", "-q"], { cwd: flake });
  await execa("git", ["add", "flake.nix"], { cwd: flake });
  await execa("git", ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "flake"], { cwd: flake });
  writeFileSync(path.join(flake, "flake.nix"), readFileSync(path.join(flake, "flake.nix"), "utf8").replace("fromFlake = true", "fromFlake = \"dirty\""));
  const { toplevel } = await evaluateSystem({ flake: `${flake}#web`, specialArgs: { address: "10.0.0.8" } });
  await buildToplevel({ flake: `${flake}#web`, specialArgs: { address: "10.0.0.8" } });
  assert.deepEqual(JSON.parse(readFileSync(toplevel, "utf8")), { fromFlake: "dirty", address: "10.0.0.8" });
});

test("the locked reference: the one nix flake metadata gives, else the store copy with its NAR hash", () => {
  assert.equal(lockedUrl({ url: "git+file:///src?ref=main&rev=abc", path: "/nix/store/x-source", locked: { narHash: "sha256-A" } }), "git+file:///src?ref=main&rev=abc");
  assert.equal(lockedUrl({ url: "path:/src?lastModified=1&narHash=sha256-A", path: "/nix/store/x-source" }), "path:/src?lastModified=1&narHash=sha256-A");
  assert.equal(lockedUrl({ url: "git+file:///src", path: "/nix/store/x-source", locked: { narHash: "sha256-a+b/c=" } }), "path:/nix/store/x-source?narHash=sha256-a%2Bb%2Fc%3D");
  assert.equal(lockedUrl({ url: "git+file:///src" }), undefined);
});

test("check refuses specialArgs that are not JSON values, and a configuration without extendModules, naming the field", async () => {
  const flake = specialArgsFlake("sa-bad");
  const failures = async (system: unknown) => ((await check({}, inputs(system))).failures ?? []).map((f) => f.reason).join("\n");
  assert.equal(await failures({ flake: `${flake}#web`, specialArgs: "10.0.0.1" }), "system.specialArgs: give specialArgs as an object of module arguments, e.g. { address: vm.ipv4 }");
  assert.equal(await failures({ flake: `${flake}#web`, specialArgs: { when: () => 0 } }), "system.specialArgs.when: give a JSON value: a string, number, boolean, null, list or object");
  const plain = path.join(dir, "sa-plain");
  mkdirSync(plain);
  writeFileSync(path.join(plain, "flake.nix"), `{ outputs = { self }: { nixosConfigurations.web.config.system.build.toplevel = derivation { name = "eval-plain-${unique}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }; }; }`);
  const text = await failures({ flake: `${plain}#web`, specialArgs: { address: "10.0.0.1" } });
  assert.match(text, /system\.flake/);
  assert.match(text, /has no extendModules/);
});

test("check refuses the secret fields the program found, before evaluating, naming each field and the keys input", async () => {
  const flake = specialArgsFlake("sa-secret");
  const result = await check({}, inputs({ flake: `${flake}#web`, specialArgs: { token: "hunter2-secret" } }, { secretFields: ["system.specialArgs.token"] }));
  const text = (result.failures ?? []).map((f) => `${f.property}: ${f.reason}`).join("\n");
  assert.match(text, /system\.specialArgs\.token/);
  assert.match(text, /`keys` input/);
  assert.doesNotMatch(text, /hunter2/);
  assert.equal(result.inputs?.["toplevel"], undefined, "nothing was evaluated");
});

test("the program finds secret fields of a system: nested Outputs, and a system secret as a whole", async () => {
  assert.deepEqual(await refusedSystemFields({ flake: ".#web", specialArgs: { address: pulumi.output("10.0.0.1"), db: { password: pulumi.secret("pw") }, list: [1, pulumi.secret(2)] } }),
    ["system.specialArgs.db.password", "system.specialArgs.list[1]"]);
  assert.deepEqual(await refusedSystemFields(pulumi.secret({ flake: ".#web" })), ["system"]);
  assert.deepEqual(await refusedSystemFields({ flake: ".#web", specialArgs: { address: pulumi.output("10.0.0.1") } }), []);
});

test("a system not known yet (a value from a resource not created) checks without failing: its toplevel is unknown", async () => {
  const flake = specialArgsFlake("sa-unknown");
  const result = await check({}, inputs({ flake: `${flake}#web`, specialArgs: { address: UNKNOWN } }, UNKNOWN));
  assert.deepEqual(result.failures ?? [], []);
  assert.equal(result.inputs?.["toplevel"], UNKNOWN);
});

test("the diskLayout agreement check reads the fileSystems of the configuration extended with specialArgs", async () => {
  const flake = path.join(dir, "sa-fs");
  mkdirSync(flake);
  cpSync(path.resolve(__dirname, "../../../test/fixtures"), path.join(flake, "fixtures"), { recursive: true });
  writeFileSync(path.join(flake, "flake.nix"), `{ outputs = { self }: {
    nixosConfigurations.web = import ./fixtures/nixos-system.nix {
      modules = [ ({ rootDevice, ... }: { fileSystems."/" = { device = rootDevice; fsType = "ext4"; }; }) ];
    };
  }; }`);
  const fileSystems = await systemFileSystems({ flake: `${flake}#web`, specialArgs: { rootDevice: "/dev/disk/by-partlabel/root" } });
  assert.deepEqual(fileSystems, { "/": { device: "/dev/disk/by-partlabel/root", fsType: "ext4", options: [] } });
});
