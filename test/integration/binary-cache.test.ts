// A binary cache feeds the fleet: a real Nix binary cache over HTTP on a loopback address,
// signed with a real key. The deployer pushes the closure once (HTTP PUTs counted at the
// server), every host substitutes it from there, and a wrong public key fails before any
// target is touched, naming the field.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { switchHost } from "../../provider/host/operations";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHosts, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { generateCacheKey, startBinaryCacheServer, type BinaryCacheServer, type CacheKey } from "../harness/binary-cache";

const N = 3;
let hosts: TestHost[];
let cache: BinaryCacheServer;
let key: CacheKey;
let otherKey: CacheKey;
let v1: string;
let v2: string;
const run = `${process.pid}-${Date.now()}`;

function spec(host: TestHost, binaryCache: Record<string, unknown>) {
  return nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: v2 },
    binaryCache,
  });
}

before(async () => {
  [v1, v2] = await Promise.all([
    buildTestSystem({ label: `cache-v1-${run}` }),
    buildTestSystem({ label: `cache-v2-${run}`, fillerCount: 4, fillerBytes: 2 * 1024 * 1024 }),
  ]);
  [key, otherKey] = await Promise.all([generateCacheKey("fleet-cache-1"), generateCacheKey("someone-else-1")]);
  cache = await startBinaryCacheServer();
  hosts = await startHosts(N, { name: "cache", state: "nixos", system: v1 });
});

after(async () => {
  await Promise.all((hosts ?? []).map((h) => h.stop()));
  await cache?.close();
});

test("hosts substitute the closure from the cache; the deployer uploads each path once", async () => {
  const binaryCache = { url: cache.url, pushUrl: `${cache.url}?compression=zstd`, publicKey: key.publicKey, secretKeyFile: key.secretKeyFile };
  const logs: string[][] = hosts.map(() => []);
  await Promise.all(hosts.map((h, i) => switchHost(spec(h, binaryCache), v2, undefined, (l) => logs[i]!.push(l))));

  for (const [i, h] of hosts.entries()) {
    assert.equal((await h.run("readlink /run/current-system")).trim(), v2, logs[i]!.join("\n"));
    assert.ok(logs[i]!.some((l) => /binary cache: the target fetched [1-9]\d* paths/.test(l)), logs[i]!.join("\n"));
    assert.ok(!logs[i]!.some((l) => l.startsWith("copy:")), "nothing was copied from the deployer");
  }
  const stats = cache.stats();
  const uploads = Object.entries(stats.putsByFile);
  assert.ok(uploads.some(([f]) => f.endsWith(".narinfo")), "the deployer pushed to the cache");
  assert.deepEqual(uploads.filter(([, n]) => n !== 1), [], "every file was uploaded exactly once");
  // What the hosts lacked (the new toplevel and its fillers) was fetched by each of them.
  const nars = Object.entries(stats.getsByFile).filter(([f]) => f.startsWith("nar/"));
  assert.equal(nars.length, 5, `toplevel + 4 fillers: ${JSON.stringify(stats.getsByFile)}`);
  for (const [file, gets] of nars) assert.equal(gets, N, `${file} fetched by every host`);
  assert.ok(stats.narGetBytes > N * 2 * 1024 * 1024 * 0.9, `hosts downloaded the closure (${stats.narGetBytes} bytes)`);
});

test("a public key that did not sign the cache fails before any target is touched, naming the field", async () => {
  const v3 = await buildTestSystem({ label: `cache-v3-${run}` });
  cache.resetStats();
  const binaryCache = { url: cache.url, publicKey: otherKey.publicKey, secretKeyFile: key.secretKeyFile };
  const s = nixosHostSchema.parse({ ...spec(hosts[0]!, binaryCache), system: { storePath: v3 } });
  await assert.rejects(switchHost(s, v3, undefined, () => {}), (err: Error) => {
    assert.match(err.message, /binaryCache\.publicKey/);
    assert.match(err.message, /not signed/);
    assert.match(err.message, /someone-else-1/);
    return true;
  });
  assert.equal((await hosts[0]!.run("readlink /run/current-system")).trim(), v2);
  assert.equal(cache.stats().narGetBytes, 0, "no target fetched anything");
});

test("a target that does not trust the cache's key refuses its paths, naming the field", async () => {
  // The deployer's copy of the cache is signed and checks out; the one the targets read is not
  // (a cache served elsewhere, re-signed or stale): the target's own check must catch it.
  const unsigned = await startBinaryCacheServer();
  try {
    const v4 = await buildTestSystem({ label: `cache-v4-${run}` });
    const binaryCache = { url: unsigned.url, pushUrl: cache.url, publicKey: key.publicKey, secretKeyFile: key.secretKeyFile };
    const { execa } = await import("execa");
    await execa("nix", ["copy", "--to", unsigned.url, v4]);
    const s = nixosHostSchema.parse({ ...spec(hosts[1]!, binaryCache), system: { storePath: v4 } });
    await assert.rejects(switchHost(s, v4, undefined, () => {}), (err: Error) => {
      assert.match(err.message, /binaryCache\.publicKey/);
      assert.match(err.message, /not signed/);
      return true;
    });
    assert.equal((await hosts[1]!.run("readlink /run/current-system")).trim(), v2);
  } finally {
    await unsigned.close();
  }
});
