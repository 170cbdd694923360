// The README's "Install" and "Use it in your project" sections, followed word for word as a
// new user would: `npm pack` in this checkout, then in an empty directory outside it install
// the tarball from npm's ordinary client, write the files the README shows, and `pulumi up`
// with the real CLI against a test host. Only the values differ (address, key, flake).
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { README, readmeBlocks } from "../harness/readme";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

const ROOT = path.dirname(README);
const TARBALL = path.join(ROOT, "nixos-pulumi-0.1.0.tgz");
let host: TestHost | undefined;
let work: string | undefined;
let env: Record<string, string> = {};

/**
 * `pulumi login --local` keeps state in the user's real home (~ from the password database,
 * not $HOME): remove the README project's stack there, before (a crashed run) and after.
 */
function forgetReadmeStack(): void {
  const state = path.join(os.userInfo().homedir, ".pulumi");
  for (const dir of ["stacks", "backups", "history", path.join("locks", "organization")]) {
    rmSync(path.join(state, dir, "my-hosts"), { recursive: true, force: true });
  }
}

after(async () => {
  if (work && existsSync(path.join(work, "my-hosts", "Pulumi.yaml"))) {
    await execa("pulumi", ["destroy", "--yes", "--non-interactive"], { cwd: path.join(work, "my-hosts"), env, extendEnv: false, reject: false });
  }
  forgetReadmeStack();
  await host?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
  rmSync(TARBALL, { force: true });
});

/** A flake whose nixosConfigurations.web is a test system (the fixtures copied into it). */
function writeFlake(dir: string): string {
  mkdirSync(path.join(dir, "test", "vm", "image"), { recursive: true });
  cpSync(path.join(ROOT, "test", "fixtures"), path.join(dir, "test", "fixtures"), { recursive: true });
  cpSync(path.join(ROOT, "test", "vm", "image", "stage2-init.sh"), path.join(dir, "test", "vm", "image", "stage2-init.sh"));
  writeFileSync(path.join(dir, "flake.nix"),
    '{ outputs = { self }: { nixosConfigurations.web.config.system.build.toplevel = import ./test/fixtures/system.nix { label = "quickstart"; }; }; }\n');
  return dir;
}

async function run(script: string, cwd: string): Promise<string> {
  const result = await execa("bash", ["-euo", "pipefail", "-c", script], { cwd, env, extendEnv: false, reject: false, all: true });
  assert.equal(result.exitCode, 0, `in ${cwd}:\n${script}\n--- output ---\n${result.all}`);
  return result.all ?? "";
}

test("the README's quick start works word for word from an empty directory", { timeout: 900_000 }, async () => {
  forgetReadmeStack();
  const v1 = await buildTestSystem({ label: "quickstart-before" });
  host = await startHost({ state: "nixos", system: v1, name: "quickstart" });
  work = mkdtempSync(path.join(os.tmpdir(), "nixos-pulumi-quickstart-"));
  const home = path.join(work, "home");
  mkdirSync(home);
  const flake = writeFlake(path.join(work, "flake"));
  // The user's environment (CA certificates, PATH with node and pulumi), a fresh home, and
  // none of this repository's own Pulumi settings.
  const own = ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_HOME", "NIXOS_PULUMI_ROOT", "INIT_CWD"];
  env = {
    ...(Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !own.includes(k) && !k.startsWith("npm_"))) as Record<string, string>),
    HOME: home,
    PULUMI_HOME: path.join(home, ".pulumi"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // npm's own cache, so packages fetched before are not downloaded again.
    npm_config_cache: path.join(os.homedir(), ".npm"),
    npm_config_prefer_offline: "true",
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
  };
  const values: [string, string][] = [
    ["/path/to/nixos-pulumi/nixos-pulumi-0.1.0.tgz", TARBALL],
    ["203.0.113.10", host.address],
    ["~/.ssh/id_ed25519", host.clientPrivateKeyPath],
    ["/etc/nixos#my-host", `${flake}#web`],
  ];
  const fill = (text: string) => values.reduce((t, [from, to]) => t.split(from).join(to), text);

  const blocks = readmeBlocks();
  const install = blocks.filter((b) => b.section === "Install" && b.lang === "sh");
  assert.equal(install.length, 1);
  await run(install[0]!.body, ROOT);
  assert.ok(existsSync(TARBALL), "npm pack wrote the tarball");

  const project = path.join(work, "my-hosts");
  mkdirSync(project);
  const steps = blocks.filter((b) => b.section === "Use it in your project");
  assert.deepEqual(steps.map((s) => s.lang), ["sh", "ts", "sh"]);
  let transcript = "";
  for (const step of steps) {
    if (step.lang === "sh") {
      transcript += await run(fill(step.body), project);
    } else {
      const file = /Save as `([^`]+)`/.exec(step.lead)?.[1];
      assert.ok(file, `README.md:${step.line}: the block says where to save it`);
      writeFileSync(path.join(project, file), step.body);
    }
  }

  // Only the library was installed, with the README's files; the host runs the flake's system.
  const installed = path.join(project, "node_modules", "nixos-pulumi");
  assert.ok(existsSync(path.join(installed, "dist", "provider", "index.js")));
  assert.ok(!existsSync(path.join(installed, "test")) && !existsSync(path.join(installed, "bench")) && !existsSync(path.join(installed, "Pulumi.yaml")));
  // Every file the provider reads at run time besides its compiled code (shell scripts, disko's
  // Nix library for diskoFile layouts) is in the installed package.
  const runtimeFiles = readdirSync(path.join(ROOT, "provider"), { recursive: true, encoding: "utf8" }).filter((f) => /\.(sh|nix)$/.test(f));
  assert.ok(runtimeFiles.includes(path.join("disk", "disko-lib.nix")));
  for (const f of runtimeFiles) assert.ok(existsSync(path.join(installed, "provider", f)), `the package ships provider/${f}`);
  const expected = (await execa("nix", ["--extra-experimental-features", "nix-command flakes", "eval", "--raw", `${flake}#nixosConfigurations.web.config.system.build.toplevel.outPath`])).stdout;
  assert.equal((await host.run("readlink /run/current-system")).trim(), expected, transcript);
  const toplevel = (await execa("pulumi", ["stack", "output", "toplevel"], { cwd: project, env: { ...env, PULUMI_CONFIG_PASSPHRASE: "choose-a-passphrase" }, extendEnv: false })).stdout.trim();
  assert.equal(toplevel, expected);
  assert.match(transcript, /my-host: switch: \(none\)|my-host .*activate: switch ok|Resources:\s+\+ 2 created/);
  env = { ...env, PULUMI_CONFIG_PASSPHRASE: "choose-a-passphrase" };
});
