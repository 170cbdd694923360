// The catalogue of bad NixosHost inputs: each is answered by `check` (before any connection)
// with an error naming the field and saying what to do.
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { check } from "../../provider/resources/nixos-host-impl";
import { check as checkLayout } from "../../provider/resources/disk-layout-impl";
import { generateKeyPair, type KeyPair } from "../harness/keys";
import { buildTestSystem } from "../harness/systems";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { switchHost } from "../../provider/host/operations";

let key: KeyPair;
let encryptedKey: KeyPair;
let storePath: string;
let packagePath: string;
let packageFile: string;
let brokenFlake: string;
let argsFile: string;
let anyArgsFile: string;
let openArgsFile: string;
let closedArgsFile: string;

before(async () => {
  key = await generateKeyPair("catalogue");
  encryptedKey = await generateKeyPair("catalogue-encrypted", "correct horse");
  const { execa } = await import("execa");
  const dir = mkdtempSync(path.join(os.tmpdir(), "catalogue-"));
  storePath = await buildTestSystem({ label: "catalogue-ok" });
  writeFileSync(path.join(dir, "package.nix"), 'derivation { name = "catalogue-package"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }');
  packageFile = path.join(dir, "package.nix");
  packagePath = (await execa("nix-build", ["--no-out-link", packageFile])).stdout.trim();
  argsFile = path.join(dir, "args.nix");
  writeFileSync(argsFile, `{ hostName ? "x", ... }: derivation { name = "catalogue-args-\${hostName}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`);
  openArgsFile = path.join(dir, "open-args.nix");
  writeFileSync(openArgsFile, `{ hostName ? "x", ... }@args: derivation { name = "catalogue-open-\${args.role or "none"}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`);
  closedArgsFile = path.join(dir, "closed-args.nix");
  writeFileSync(closedArgsFile, `{ hostName ? "x" }: derivation { name = "catalogue-closed-\${hostName}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`);
  anyArgsFile = path.join(dir, "any-args.nix");
  writeFileSync(anyArgsFile, `{ ... }: derivation { name = "catalogue-any"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`);
  brokenFlake = path.join(dir, "broken");
  await execa("mkdir", ["-p", brokenFlake]);
  writeFileSync(path.join(brokenFlake, "flake.nix"), '{ outputs = { self }: { nixosConfigurations.web = throw "web: option fileSystems is used but not defined"; }; }');
});

const good = () => ({
  connection: { host: "127.0.0.1", privateKey: key.privateKey },
  system: { storePath },
});

type Case = [name: string, mutate: (i: any) => void, field: RegExp, fix?: RegExp];

const cases: Case[] = [
  ["connection missing", (i) => delete i.connection, /connection/],
  ["empty host", (i) => (i.connection.host = " "), /connection\.host/, /address/],
  ["port 0", (i) => (i.connection.port = 0), /connection\.port/, /1 to 65535/],
  ["port 70000", (i) => (i.connection.port = 70000), /connection\.port/, /65535/],
  ["port as a string", (i) => (i.connection.port = "22"), /connection\.port/],
  ["empty user", (i) => (i.connection.user = ""), /connection\.user/],
  ["private key given as a path", (i) => (i.connection.privateKey = "/root/.ssh/id_ed25519"), /connection\.privateKey/, /contents/],
  ["unreadable private key", (i) => (i.connection.privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n"), /connection\.privateKey/, /cannot be read/],
  ["encrypted key without its passphrase", (i) => (i.connection.privateKey = encryptedKey.privateKey), /connection\.privateKeyPassword/, /encrypted/],
  ["encrypted key with a wrong passphrase", (i) => { i.connection.privateKey = encryptedKey.privateKey; i.connection.privateKeyPassword = "wrong"; }, /connection\.privateKeyPassword/],
  ["malformed host key", (i) => (i.connection.hostKey = "AAAAC3NzaC1lZDI1NTE5"), /connection\.hostKey/, /ssh-ed25519 AAAA/],
  ["non-root user without sudo", (i) => (i.connection.user = "deploy"), /connection\.sudo/, /sudo: true/],
  ["sudoPassword for root, which needs no sudo", (i) => (i.connection.sudoPassword = "pw"), /connection\.sudoPassword/, /sudo: true/],
  ["sudoPassword with a line break", (i) => Object.assign(i.connection, { user: "deploy", sudo: true, sudoPassword: "a\nb" }), /connection\.sudoPassword/, /one line/],
  ["misspelled connection field", (i) => (i.connection.hostname = "x"), /connection/, /hostname/],
  ["bad jump host port", (i) => (i.connection.proxy = { host: "bastion", port: -1 }), /connection\.proxy\.port/],
  ["system missing", (i) => delete i.system, /system/],
  ["both flake and storePath", (i) => (i.system = { flake: ".#web", storePath }), /system/, /exactly one/],
  ["storePath outside the store", (i) => (i.system = { storePath: "/tmp/result" }), /system/, /store path/],
  ["flake without a configuration name", (i) => (i.system = { flake: "./infra" }), /system/],
  ["expression without a file", (i) => (i.system = { expression: { attr: "web" } }), /system/],
  ["unknown switch action", (i) => (i.switch = { action: "restart" }), /switch\.action/, /"switch", "boot", "test"/],
  ["unknown rollback policy", (i) => (i.switch = { rollback: "always" }), /switch\.rollback/, /magic/],
  ["empty health check", (i) => (i.switch = { healthChecks: [""] }), /switch\.healthChecks\[0\]/],
  ["unknown install phase", (i) => (i.install = { phases: ["format"] }), /install\.phases\[0\]/, /kexec/],
  ["disko phase without a layout", (i) => (i.install = { phases: ["disko"] }), /install\.phases/, /DiskLayout/],
  ["non-string reinstall trigger", (i) => (i.reinstallTriggers = { vm: 5 }), /reinstallTriggers\.vm/],
  ["unknown build location", (i) => (i.build = { on: "cloud" }), /build\.on/, /"local" or "target"/],
  ["misspelled top-level input", (i) => (i.swich = { action: "boot" }), /^swich: /, /did you mean "switch"\?/],
  ["misspelled connection field", (i) => (i.connection.prot = 2222), /^connection\.prot: /, /did you mean "port"\?/],
  ["misspelled jump host field", (i) => (i.connection.proxy = { host: "bastion", hostKye: "x" }), /^connection\.proxy\.hostKye: /, /did you mean "hostKey"\?/],
  ["misspelled switch field", (i) => (i.switch = { rollbak: "magic" }), /^switch\.rollbak: /, /did you mean "rollback"\?/],
  ["misspelled install field", (i) => (i.install = { phase: ["kexec"] }), /^install\.phase: /, /did you mean "phases"\?/],
  ["misspelled extraFiles field", (i) => (i.install = { phases: ["kexec"], extraFiles: { "/etc/x": { content: "x", mod: "0600" } } }), /^install\.extraFiles\.\/etc\/x\.mod: /, /did you mean "mode"\?/],
  ["misspelled expression field", (i) => (i.system = { expression: { file: "./x.nix", atr: "web" } }), /^system\.expression\.atr: /, /did you mean "attr"\?/],
  ["misspelled system kind", (i) => (i.system = { flak: ".#web" }), /^system\.flak: /, /did you mean "flake"\?/],
];

for (const [name, mutate, field, fix] of cases) {
  test(`bad input: ${name}`, async () => {
    const inputs: any = good();
    mutate(inputs);
    const text = await failureText(inputs);
    assert.match(text, new RegExp(field.source, "m"));
    if (fix) assert.match(text, fix);
    assert.ok(!text.includes("PRIVATE KEY-----\n"), "no key material in the error");
    assert.ok(!text.includes("correct horse"));
    assert.ok(!/\n\s+at /.test(text), "no stack trace");
  });
}

/** What `check` hands the engine: one failure per bad field, each a line "path: message". */
async function failureText(inputs: Record<string, unknown>): Promise<string> {
  const result = await check({}, inputs);
  assert.ok(result.failures && result.failures.length > 0, "check reports a failure");
  return result.failures.map((f) => f.reason).join("\n");
}

test("bad input: a store path that does not exist", async () => {
  const missing = "/nix/store/00000000000000000000000000000000-nixos-system-missing";
  assert.match(await failureText({ ...good(), system: { storePath: missing } }), /system\.storePath[\s\S]*(not|does not exist|valid)/);
});

test("bad input: a store path that is not a NixOS system (a package) is refused at check, naming what it lacks", async () => {
  const text = await failureText({ ...good(), system: { storePath: packagePath } });
  assert.match(text, /system\.storePath: .* is not a NixOS system: it has no bin\/switch-to-configuration, init, nixos-version/);
  assert.match(text, /fix: give the store path of a NixOS toplevel \(config\.system\.build\.toplevel/);
});

test("a system expression that builds a package, not a NixOS system, is refused after the build, before any connection", async () => {
  const spec = nixosHostSchema.parse({ connection: { host: "127.0.0.1", port: 1, privateKey: key.privateKey }, system: { expression: { file: packageFile } } });
  await assert.rejects(switchHost(spec, packagePath, undefined, () => {}), (err: Error) => {
    assert.match(err.message, /\[system\.expression\] \/nix\/store\/\S+-catalogue-package is not a NixOS system/);
    assert.match(err.message, /fix: system\.expression must select a NixOS toplevel/);
    return true;
  });
});

test("bad input: a flake that fails to evaluate", async () => {
  const text = await failureText({ ...good(), system: { flake: `path:${brokenFlake}#web` } });
  assert.match(text, /system\.flake/);
  assert.match(text, /fileSystems is used but not defined/);
});

test("bad input: an expression arg the expression's function does not take", async () => {
  const text = await failureText({ ...good(), system: { expression: { file: argsFile, args: { hostNmae: "web1" } } } });
  assert.match(text, /^system\.expression\.args\.hostNmae: .* takes no argument "hostNmae"; did you mean "hostName"\?/m);
});

test("an arg a function with `...` may read through @args is accepted; one a closed function would drop is not", async () => {
  const open = await check({}, { ...good(), system: { expression: { file: openArgsFile, args: { role: "db" } } } });
  assert.equal(open.failures, undefined, "Nix passes role into { hostName, ... }@args");
  const closed = await failureText({ ...good(), system: { expression: { file: closedArgsFile, args: { role: "db" } } } });
  assert.match(closed, /^system\.expression\.args\.role: .* takes no argument "role" \(it takes "hostName"\)/m);
});

test("an expression whose function takes any args ({ ... }) is not second-guessed", async () => {
  const result = await check({}, { ...good(), system: { expression: { file: anyArgsFile, args: { anything: "x" } } } });
  assert.equal(result.failures, undefined);
});

test("one failure per bad field, each one line without the resource's error prefix", async () => {
  const inputs: any = good();
  inputs.connection.port = 0;
  inputs.swich = {};
  const result = await check({}, inputs);
  assert.equal(result.failures?.length, 2);
  for (const f of result.failures!) assert.doesNotMatch(f.reason, /\n|InputError|invalid NixosHost/);
});

test("good input passes check and gets its toplevel", async () => {
  const result = await check({}, good());
  assert.equal(result.inputs?.["toplevel"], storePath);
});

test("DiskLayout: a misspelled field deep in the layout fails check with 'did you mean', one line", async () => {
  const result = await checkLayout({}, {
    disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", contnet: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } } },
  });
  const text = (result.failures ?? []).map((f) => f.reason).join("\n");
  assert.match(text, /disk\.main\.content\.partitions\.root\.contnet: unknown field "contnet"; did you mean "content"\?/);
  assert.doesNotMatch(text, /\n\s+at /);
});
