// The provider with real Nix of several versions on both ends (test/harness/nix-versions.ts):
// the deployer's Nix evaluates (expression, flake, store path), queries closures, realises,
// pushes to a binary cache and signs; the target's Nix answers the serve protocol, registers
// paths (content-addressed ones too), sets the profile, builds on the target and substitutes.
// Pairs: the newest deployer to the oldest target, the reverse, and the middle version on both
// ends; every other test runs this machine's Nix (2.8) on both ends.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execa } from "execa";
import { switchHost } from "../../provider/host/operations";
import { buildToplevel, closureOf, evaluateSystem } from "../../provider/nix";
import { parseNixVersion } from "../../provider/nix/nix-version";
import { parsePathInfoJson, pathInfoJsonArgs } from "../../provider/nix/path-info-json";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { connectionSchema } from "../../provider/schema/connection";
import { connect } from "../../provider/ssh";
import { streamPaths } from "../../provider/copy/stream";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem, SYSTEM_NIX } from "../harness/systems";
import { matrixEnds, withDeployerNix, type NixUnderTest } from "../harness/nix-versions";
import { assertClosureVerifies } from "../harness/store-verify";
import { generateCacheKey, startBinaryCacheServer, type BinaryCacheServer, type CacheKey } from "../harness/binary-cache";

const { oldest, middle, newest } = matrixEnds();
const pairs: { deployer: NixUnderTest; target: NixUnderTest }[] = [
  { deployer: newest, target: oldest },
  { deployer: oldest, target: newest },
  { deployer: middle, target: middle },
];
const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(path.join(os.tmpdir(), "nix-matrix-"));
const hosts: TestHost[] = [];
let base: string;
let cache: BinaryCacheServer;
let key: CacheKey;

before(async () => {
  base = await buildTestSystem({ label: `matrix-base-${run}` });
  [cache, key] = await Promise.all([startBinaryCacheServer(), generateCacheKey("matrix-cache-1")]);
});

after(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await cache?.close();
  rmSync(dir, { recursive: true, force: true });
});

const connection = (host: TestHost) => ({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey });

/** The target's own `nix path-info` of paths, read as its version prints it (a .drv needs --derivation in 2.8). */
async function targetPathInfo(host: TestHost, target: NixUnderTest, paths: string[]) {
  const query = async (list: string[], extra: string[]) => {
    if (list.length === 0) return [];
    const args = ["nix", "--extra-experimental-features", "nix-command", "path-info", ...pathInfoJsonArgs(parseNixVersion(target.version)), ...extra, ...list];
    return parsePathInfoJson(await host.run(args.join(" ")));
  };
  const drvs = paths.filter((p) => p.endsWith(".drv"));
  return [...(await query(drvs, ["--derivation"])), ...(await query(paths.filter((p) => !p.endsWith(".drv")), []))];
}

/**
 * Nix's complaints in what the deployer's Nix printed for the provider's calls. Every version
 * (2.8 too) warns that `nix-instantiate` and `nix-store --realise` without `--add-root` make no
 * GC root: known, and not about a version.
 */
function warnings(log: string): string[] {
  return log.split("\n").filter((l) => /warning|deprecated/i.test(l) && !/you did not specify '--add-root'/.test(l));
}

for (const { deployer, target } of pairs) {
  const title = `Nix ${deployer.name} deployer → Nix ${target.name} target`;
  let host: TestHost;
  const stderrLog = path.join(dir, `deployer-${deployer.name}-to-${target.name}.log`);
  const asDeployer = <T>(fn: () => Promise<T>) => withDeployerNix(deployer, fn, stderrLog);

  test(`${title}: an expression, a flake and a store path evaluate; the system is realised, copied and switched`, async () => {
    host = await startHost({ name: `mx${deployer.name.replace(".", "")}to${target.name.replace(".", "")}`, state: "nixos", system: base, nixBin: target.targetBin });
    hosts.push(host);
    assert.match(await host.run("nix-store --version"), new RegExp(target.version.split(" ").pop()!.replace(/\./g, "\\.")));
    const label = `matrix-${deployer.name}-${target.name}-${run}`;
    const flake = path.join(dir, `flake-${deployer.name}-${target.name}`);
    // A flake evaluates purely: it carries the test system's files itself.
    cpSync(path.dirname(SYSTEM_NIX), path.join(flake, "fixtures"), { recursive: true });
    cpSync(path.resolve(path.dirname(SYSTEM_NIX), "../vm/image"), path.join(flake, "vm/image"), { recursive: true });
    writeFileSync(path.join(flake, "flake.nix"), `{ outputs = { self }: { nixosConfigurations.web.config.system.build.toplevel = import ./fixtures/system.nix { label = "${label}-flake"; }; }; }`);
    const lines: string[] = [];
    let flakeToplevel = "";
    await asDeployer(async () => {
      const fromExpression = await evaluateSystem({ expression: { file: SYSTEM_NIX, args: { label } } });
      assert.match(fromExpression.derivation!, /\.drv$/);
      const fromFlake = await evaluateSystem({ flake: `${flake}#web` });
      assert.match(fromFlake.toplevel, new RegExp(`-nixos-system-test-${label}-flake`));
      assert.equal(await buildToplevel({ flake: `${flake}#web` }), fromFlake.toplevel);
      flakeToplevel = fromFlake.toplevel;
      assert.deepEqual(await evaluateSystem({ storePath: base }), { toplevel: base });

      const spec = nixosHostSchema.parse({ connection: connection(host), system: { expression: { file: SYSTEM_NIX, args: { label } } } });
      const facts = await switchHost(spec, fromExpression.toplevel, undefined, (l) => lines.push(l));
      assert.equal(facts.currentSystem, fromExpression.toplevel, lines.join("\n"));
      assert.equal((await host.run("cat /etc/nixos-test-release")).trim(), label);
      assert.equal((await host.run("readlink -f /nix/var/nix/profiles/system")).trim(), fromExpression.toplevel);
      await assertClosureVerifies(host, fromExpression.toplevel);

      // Paths the target already has, sent again (an update's question answered before another
      // deployer sent them): the target's nix-store reads each through and acknowledges it.
      const again = (await closureOf(fromExpression.toplevel)).slice(0, 3);
      const session = await connect(connectionSchema.parse(connection(host)));
      try {
        // Three in one stream: a target that did not read a valid path's NAR through would take the next one's bytes for a command.
        assert.equal((await streamPaths(session, again, { compression: "none" })).sent, again.length);
      } finally {
        session.close();
      }
      await assertClosureVerifies(host, fromExpression.toplevel);
    });
    // The versions share this machine's store: 2.8 reads what the deployer's Nix registered.
    const refs = await execa("/usr/bin/nix-store", ["--query", "--references", flakeToplevel]);
    assert.match(refs.stdout, /-busybox-static/);
    const log = readFileSync(stderrLog, "utf8");
    assert.match(log, /^\$ nix .*path-info/m, "the provider's closure query ran the deployer's Nix");
    assert.deepEqual(warnings(log), [], `Nix ${deployer.version} warned:\n${log}`);
  });

  test(`${title}: a system built on the target runs there; its .drv closure arrives with its content addresses`, async () => {
    const label = `matrix-bot-${deployer.name}-${target.name}-${randomBytes(3).toString("hex")}`;
    const spec = nixosHostSchema.parse({ connection: connection(host), system: { expression: { file: SYSTEM_NIX, args: { label } } }, build: { on: "target" } });
    const lines: string[] = [];
    await asDeployer(async () => {
      const { toplevel, derivation } = await evaluateSystem(spec.system);
      const facts = await switchHost(spec, toplevel, undefined, (l) => lines.push(l));
      assert.equal(facts.currentSystem, toplevel, lines.join("\n"));
      // The .drv files (and builtins.toFile sources) are content-addressed: they arrive with
      // the content address the deployer's Nix printed, as the target's own Nix reads it back.
      const addressed = (await closureOf(derivation!)).filter((p) => p.ca !== "");
      assert.ok(addressed.some((p) => p.ca.startsWith("text:sha256:")), "the .drv closure has content-addressed paths");
      const there = await targetPathInfo(host, target, addressed.map((p) => p.path));
      const row = (p: { path: string; ca: string; narHash: string }) => [p.path, p.ca, p.narHash].join(" ");
      assert.deepEqual(there.map(row).sort(), addressed.map(row).sort());
      const local = await execa("nix-store", ["--check-validity", toplevel], { reject: false });
      assert.notEqual(local.exitCode, 0, "the toplevel was not built on the deployer");
    });
    assert.equal((await host.run("cat /etc/nixos-test-release")).trim(), label);
    assert.deepEqual(warnings(readFileSync(stderrLog, "utf8")), []);
  });

  test(`${title}: the deployer pushes to a signed binary cache and the target substitutes from it`, async () => {
    const system = await buildTestSystem({ label: `matrix-cache-${deployer.name}-${target.name}-${run}` });
    const binaryCache = { url: cache.url, pushUrl: `${cache.url}?compression=zstd`, publicKey: key.publicKey, secretKeyFile: key.secretKeyFile };
    const spec = nixosHostSchema.parse({ connection: connection(host), system: { storePath: system }, binaryCache });
    const lines: string[] = [];
    await asDeployer(async () => {
      const facts = await switchHost(spec, system, undefined, (l) => lines.push(l));
      assert.equal(facts.currentSystem, system, lines.join("\n"));
    });
    assert.ok(lines.some((l) => /binary cache: the target fetched [1-9]\d* paths/.test(l)), lines.join("\n"));
    assert.ok(!lines.some((l) => l.startsWith("copy:")), "nothing was copied from the deployer");
    await assertClosureVerifies(host, system);
    assert.deepEqual(warnings(readFileSync(stderrLog, "utf8")), []);
  });
}
