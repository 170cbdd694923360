// The example projects as a user gets them: nixos-pulumi packed (`npm pack`) and installed
// from that tarball with npm into an empty directory outside this checkout, next to copies of
// examples/ (each project's package.json names the tarball), with the real provider packages
// from npm. There they type-check against the installed package (a deliberately wrong program
// is checked in the same run, so the check cannot pass vacuously), their Nix files parse and
// their pure parts evaluate (a stand-in nixpkgs whose nixosSystem returns its arguments, so
// the flake's module list is checked without nixpkgs), the committed disk-layout.nix is what
// the installed package renders from the example's layout — for flake-fleet from its disko
// file, through the disko-lib.nix the tarball ships —, and ssh2's native binding, not built
// (install scripts skipped, as npm 12 does), is built by the command the installed provider's
// warning names.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const EXAMPLES = path.join(ROOT, "examples");
const PROJECTS = ["hetzner", "aws-bastion", "adopt", "flake-fleet"];
/** Examples that install (a DiskLayout whose NixOS module their flake imports). */
const INSTALLING = ["hetzner", "aws-bastion", "flake-fleet"];

const work = mkdtempSync(path.join(os.tmpdir(), "nixos-pulumi-examples-"));
const project = path.join(work, "examples");
after(() => rmSync(work, { recursive: true, force: true }));

/** The environment of a user: none of this checkout's npm or Pulumi settings. */
const userEnv = {
  ...(Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith("npm_") && !["INIT_CWD", "NIXOS_PULUMI_ROOT"].includes(k))) as Record<string, string>),
  npm_config_cache: path.join(os.homedir(), ".npm"),
  npm_config_prefer_offline: "true",
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false",
};

async function sh(script: string, cwd: string): Promise<string> {
  const result = await execa("bash", ["-euo", "pipefail", "-c", script], { cwd, env: userEnv, extendEnv: false, reject: false, all: true });
  assert.equal(result.exitCode, 0, `in ${cwd}:\n${script}\n--- output ---\n${result.all}`);
  return result.all ?? "";
}

/** `node -e code` with this Node (the one that runs the provider) in `cwd`. */
async function nodeEval(cwd: string, code: string): Promise<string> {
  const result = await execa(process.execPath, ["-e", code], { cwd, env: userEnv, extendEnv: false, reject: false, all: true, stripFinalNewline: false });
  assert.equal(result.exitCode, 0, `node -e in ${cwd}:\n${code}\n--- output ---\n${result.all}`);
  return result.stdout;
}

test("the examples install nixos-pulumi from its tarball and type-check, evaluate and build ssh2 there", { timeout: 900_000 }, async (t) => {
  const started = performance.now();
  let userData = 0;
  for (const p of PROJECTS) {
    // A cloud's user data carrying a private host key is a secret, else the state holds the key.
    for (const m of readFileSync(path.join(EXAMPLES, p, "index.ts"), "utf8").matchAll(/^\s*userData: (.*)$/gm)) {
      assert.match(m[1]!, /^pulumi\.secret\(/, `${p}/index.ts: userData is wrapped in pulumi.secret`);
      userData++;
    }
    for (const f of ["Pulumi.yaml", "package.json", "index.ts", "flake.nix"]) assert.ok(existsSync(path.join(EXAMPLES, p, f)), `${p}/${f}`);
    const pkg = JSON.parse(readFileSync(path.join(EXAMPLES, p, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    assert.equal(pkg.dependencies?.["nixos-pulumi"], "file:../../nixos-pulumi-0.1.0.tgz", `${p}/package.json depends on the packed nixos-pulumi`);
  }

  assert.equal(userData, 2, "hetzner and aws-bastion hand the host key to cloud-init");

  // The tarball, where the examples' package.json expect it relative to them.
  await sh(`npm pack --pack-destination ${work} >/dev/null`, ROOT);
  cpSync(EXAMPLES, project, { recursive: true, filter: (src) => !/[/\\](node_modules|demo|\.typecheck-[^/\\]*)$/.test(src) });
  // The lock pins the registry packages; the tarball is the one packed just now (its hash
  // differs from the lock's after any change). Install scripts are skipped, as npm 12 does by
  // default (npm 11 runs ssh2's, which builds it for the headers npm's nodedir names).
  const lock = JSON.parse(readFileSync(path.join(project, "package-lock.json"), "utf8")) as { packages: Record<string, { integrity?: string }> };
  delete lock.packages["node_modules/nixos-pulumi"]!.integrity;
  writeFileSync(path.join(project, "package-lock.json"), JSON.stringify(lock, null, 2));
  await sh("npm install --ignore-scripts --loglevel=error", project);
  t.diagnostic(`installed: ${Math.round(performance.now() - started)} ms`);

  const installed = path.join(project, "node_modules", "nixos-pulumi");
  assert.ok(!lstatSync(installed).isSymbolicLink() && !realpathSync(installed).startsWith(ROOT + path.sep), "nixos-pulumi is a copy from the tarball, not this checkout");
  for (const pkg of ["@pulumi/hcloud", "@pulumi/aws", "@pulumi/command", "@pulumi/pulumi"]) {
    assert.ok(existsSync(path.join(project, "node_modules", pkg, "package.json")), `${pkg} installed`);
  }

  // Type-check every project against the installed packages, and emit, so the layouts can be
  // rendered by the installed package below.
  const out = path.join(work, "out");
  mkdirSync(path.join(project, "typecheck"));
  writeFileSync(path.join(project, "typecheck", "wrong.ts"), [
    'import { NixosHost } from "nixos-pulumi";',
    'new NixosHost("x", { connection: { host: "h" }, system: { flake: ".#x" }, swich: { action: "boot" } });',
    "",
  ].join("\n"));
  writeFileSync(path.join(project, "typecheck", "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      target: "ES2023", lib: ["ES2023"], module: "nodenext", moduleResolution: "nodenext", types: ["node"], strict: true,
      skipLibCheck: true, esModuleInterop: true, outDir: out, rootDir: "..",
    },
    include: [...PROJECTS.map((p) => `../${p}/*.ts`), "wrong.ts"],
  }));
  const result = await execa(path.join(project, "node_modules", ".bin", "tsc"), ["-p", "typecheck"], { cwd: project, reject: false, env: userEnv, extendEnv: false });
  const errors = result.stdout.split("\n").filter((l) => /error TS/.test(l));
  assert.ok(errors.length > 0 && errors.every((l) => l.includes("wrong.ts")), `only the wrong program fails:\n${result.stdout}`);
  assert.match(errors.join("\n"), /'swich' does not exist/);

  // Nix files: each parses; each flake's outputs evaluate with a stand-in nixpkgs, and each
  // module file they list exists (the layout's module among them where the example installs).
  for (const p of PROJECTS) {
    const dir = path.join(project, p);
    for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((x) => x.endsWith(".nix") && !x.includes("node_modules"))) {
      await sh(`nix-instantiate --parse ${JSON.stringify(f)} >/dev/null`, dir);
    }
    const fakeNixpkgs = `{ lib = {
      nixosSystem = args: args;
      genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
      filterAttrs = pred: set: builtins.listToAttrs (builtins.filter (a: pred a.name a.value) (map (n: { name = n; value = set.\${n}; }) (builtins.attrNames set)));
    }; }`;
    const expr = `let f = import ./flake.nix; o = f.outputs { self = o; nixpkgs = ${fakeNixpkgs}; }; in
      builtins.mapAttrs (n: c: map (m: if builtins.isPath m then { path = toString m; exists = builtins.pathExists m; } else "inline") c.modules) o.nixosConfigurations`;
    writeFileSync(path.join(dir, "check-flake.nix"), expr);
    const { stdout: json } = await execa("nix-instantiate", ["--eval", "--strict", "--json", "check-flake.nix"], { cwd: dir });
    rmSync(path.join(dir, "check-flake.nix"));
    const systems = JSON.parse(json) as Record<string, ({ path: string; exists: boolean } | "inline")[]>;
    assert.ok(Object.keys(systems).length > 0, `${p}/flake.nix defines nixosConfigurations`);
    for (const [name, modules] of Object.entries(systems)) {
      const files = modules.filter((m) => m !== "inline");
      for (const m of files) assert.ok(m.exists, `${p}: nixosConfigurations.${name} imports ${m.path}, which is missing`);
      if (INSTALLING.includes(p)) {
        assert.ok(files.some((m) => path.basename(m.path) === "disk-layout.nix"), `${p}: nixosConfigurations.${name} imports the layout's module disk-layout.nix`);
      }
    }
  }

  // The committed disk-layout.nix files are what the installed package renders from the
  // examples' layouts (a DiskLayout spec; flake-fleet's disko file, evaluated with the
  // tarball's disko-lib.nix), and evaluate to the layout's root filesystem.
  const render = async (p: string, argsCode: string) => nodeEval(path.join(project, p),
    `require("nixos-pulumi").diskLayoutNixosModule(${argsCode}).then((m) => process.stdout.write(m), (e) => { console.error(e); process.exit(1); })`);
  const rendered: Record<string, string> = {
    hetzner: await render("hetzner", `require(${JSON.stringify(path.join(out, "hetzner", "layout.js"))}).layoutSpec`),
    "aws-bastion": await render("aws-bastion", `require(${JSON.stringify(path.join(out, "aws-bastion", "layout.js"))}).layoutSpec`),
    "flake-fleet": await render("flake-fleet", `{ diskoFile: "./disk-config.nix" }`),
  };
  for (const [p, module] of Object.entries(rendered)) {
    assert.equal(readFileSync(path.join(EXAMPLES, p, "disk-layout.nix"), "utf8"), module, `examples/${p}/disk-layout.nix is what its layout renders`);
    const root = await sh(`nix-instantiate --eval --strict --json -E '(import ./disk-layout.nix { }).fileSystems."/"'`, path.join(project, p));
    assert.equal((JSON.parse(root) as { fsType: string }).fsType, "ext4", `${p}: the layout's root filesystem`);
  }

  t.diagnostic(`type-checked and evaluated: ${Math.round(performance.now() - started)} ms`);
  // ssh2's binding, absent as an install that skipped its script leaves it: the installed
  // provider warns, and the command it names makes the binding load in this Node.
  rmSync(path.join(project, "node_modules", "ssh2", "lib", "protocol", "crypto", "build"), { recursive: true, force: true });
  const bindingModule = JSON.stringify(path.join(installed, "dist", "provider", "ssh", "crypto-binding.js"));
  const warning = await nodeEval(project, `process.stdout.write(String(require(${bindingModule}).cryptoBindingWarning()))`);
  const fix = /build it for this Node with: (.+)$/.exec(warning)?.[1];
  assert.ok(fix, `the warning names a command: ${warning}`);
  await sh(fix, os.tmpdir());
  assert.equal(await nodeEval(project, `process.stdout.write(String(require(${bindingModule}).cryptoBindingWarning()))`), "undefined");
  assert.equal(await nodeEval(project, `process.stdout.write(String(require("ssh2/lib/protocol/crypto.js").bindingAvailable))`), "true");
  t.diagnostic(`ssh2 built: ${Math.round(performance.now() - started)} ms`);
});
