// Closure copies to real test hosts: everything the target lacks arrives and verifies there,
// nothing it has is sent, large paths go through a staging file, and the stream is compressed
// when asked or when the link measures slow (through the proxy), with what the target has.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { copyClosure } from "../../provider/copy";
import { closureOf } from "../../provider/nix/closure";
import { localCpuHasAes } from "../../provider/ssh/cpu-aes";
import { TRY_BELOW } from "../../provider/copy/auto-compression";
import { connectionSchema } from "../../provider/schema/connection";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";
import { buildTestSystem } from "../harness/systems";
import { buildRealFilesClosure } from "../harness/real-files";
import { assertClosureVerifies } from "../harness/store-verify";

const MiB = 1024 * 1024;
const hosts: TestHost[] = [];
const proxies: TcpProxy[] = [];
after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(hosts.map((h) => h.stop()));
});

let realFiles: string;
before(async () => {
  realFiles = await buildRealFilesClosure("copy-test", 30 * MiB, 6);
});

async function freshHost(name: string) {
  const host = await startHost({ name, state: "installer" });
  hosts.push(host);
  return host;
}

/** A fresh test host behind a proxy of its own (closed after the file), its rate set when given. */
async function hostBehindProxy(name: string, rate?: number) {
  const host = await freshHost(name);
  const proxy = await startProxy({ target: { host: host.address, port: host.port } });
  proxies.push(proxy);
  if (rate !== undefined) proxy.setRate(rate);
  return { host, proxy };
}

const open = (host: TestHost, via?: TcpProxy) =>
  connect(
    connectionSchema.parse({
      host: via?.address ?? host.address,
      port: via?.port ?? host.port,
      privateKey: host.clientPrivateKey,
      hostKey: host.hostPublicKey,
    }),
  );

test("a cold copy registers every path, large ones through a staging file; a second copy sends nothing", async () => {
  const system = await buildTestSystem({ label: "copy-cold", fillerCount: 6, fillerBytes: 12 * MiB });
  const host = await freshHost("copycold");
  const lines: string[] = [];
  const session = await open(host);
  const first = await copyClosure(session, system, { progress: (l) => lines.push(l), stageAbove: MiB });
  assert.equal(first.pathsCopied, first.pathsTotal);
  assert.ok(first.bytesCopied > 12 * MiB);
  await assertClosureVerifies(host, system);
  assert.ok(!lines.some((l) => /warning/.test(l)), lines.join("\n"));
  const again = await copyClosure(first.session, system);
  assert.equal(again.pathsCopied, 0);
  assert.equal(again.wireBytes, 0);
  again.session.close();
});

for (const compress of ["zstd", "gzip"] as const) {
  test(`copy.compress "${compress}" compresses the stream with the target's ${compress}`, async () => {
    const host = await freshHost(`copy${compress}`);
    const session = await open(host);
    const result = await copyClosure(session, realFiles, { compress });
    result.session.close();
    assert.equal(result.compression, compress);
    assert.ok(result.wireBytes < result.bytesCopied * 0.7, `${result.wireBytes} on the wire for ${result.bytesCopied} of NARs`);
    await assertClosureVerifies(host, realFiles);
  });
}

test('copy.compress "auto" compresses when the link measures slow (the proxy at 4 MiB/s)', async () => {
  const { host, proxy } = await hostBehindProxy("copyauto", 4 * MiB);
  const lines: string[] = [];
  const session = await open(host, proxy);
  const result = await copyClosure(session, realFiles, { progress: (l) => lines.push(l) });
  result.session.close();
  assert.equal(result.compression, "zstd", lines.join("\n"));
  assert.match(lines.join("\n"), /link measured at [0-4]\.\d MiB\/s uncompressed; measuring zstd/);
  // zstd halves these files: the compressed stretch took NARs in at about twice the plain rate.
  assert.match(lines.join("\n"), /zstd took NARs in at ([4-9]|\d\d)\.\d MiB\/s, uncompressed [0-4]\.\d MiB\/s; compression: zstd/);
  // The first 8 MiB, the measurement and the rest of the path it ends in go uncompressed (up
  // to half of this 34 MiB closure, depending on where the measurement ends); the rest is
  // zstd's (< 0.7 above). Uncompressed, the wire would carry more than the NARs.
  assert.ok(result.wireBytes < result.bytesCopied * 0.9, `${result.wireBytes} on the wire for ${result.bytesCopied} of NARs`);
  await assertClosureVerifies(host, realFiles);
});

test('"auto" measuring a slow link inside a large staged path: the compressed stretch ends as a whole stream, and the path arrives', async () => {
  // The two measured stretches of one staged path: 8 MiB plain, then 8 MiB compressed and cut
  // there. Before, the cut unpiped the compressor mid-stream and the target's decompressor
  // failed on it ("zstd/gzip: unexpected end of file"): every install into a slow installer failed.
  const large = await buildRealFilesClosure("copy-staged", 24 * MiB, 1);
  const { host, proxy } = await hostBehindProxy("copystaged", 4 * MiB);
  const lines: string[] = [];
  const session = await open(host, proxy);
  const result = await copyClosure(session, large, { stageAbove: MiB, progress: (l) => lines.push(l) });
  result.session.close();
  assert.match(lines.join("\n"), /link measured at [0-4]\.\d MiB\/s uncompressed; measuring zstd/);
  assert.match(lines.join("\n"), /zstd took NARs in at [\d.]+ MiB\/s, uncompressed [\d.]+ MiB\/s; compression: (zstd|none)/);
  await assertClosureVerifies(host, large);
});

test('"auto" whose plain measurement ends inside the last path sends the rest plain and says so: nothing is compressed unmeasured', async () => {
  // One ~28 MiB path: the plain stretch is measured inside it (8 to 16 MiB, slow enough to try
  // compressing), so the stream can end only after it, with nothing left to measure compressed.
  const single = await buildRealFilesClosure("copy-short-rest", 28 * MiB, 1);
  const { host, proxy } = await hostBehindProxy("copyshortrest", 16 * MiB);
  const lines: string[] = [];
  const session = await open(host, proxy);
  const result = await copyClosure(session, single, { progress: (l) => lines.push(l) });
  result.session.close();
  const log = lines.join("\n");
  assert.match(log, /link measured at [\d.]+ MiB\/s uncompressed; measuring zstd\n(.*\n)*copy: too little was left to measure zstd; compression: none/, log);
  assert.equal(result.compression, "none");
  assert.ok(result.wireBytes >= result.bytesCopied, `${result.wireBytes} on the wire for ${result.bytesCopied} of NARs: something went compressed`);
  await assertClosureVerifies(host, single);
});

test('copy.compress "auto" measures a fast link (loopback) once the target takes the stream in, and sends it uncompressed', async () => {
  const host = await freshHost("copyfast");
  const lines: string[] = [];
  const session = await open(host);
  const result = await copyClosure(session, realFiles, { progress: (l) => lines.push(l), inProcess: true });
  result.session.close();
  // The first MiBs only fill the channel's window while the target's store starts: measured
  // from there a loopback link would look slow enough to try compressing.
  const log = lines.join("\n");
  const rate = Number(/link measured at ([\d.]+) MiB\/s uncompressed/.exec(log)?.[1]);
  assert.ok(rate > 20, log);
  assert.equal(result.compression, "none", log);
  if (rate * MiB >= TRY_BELOW) {
    assert.doesNotMatch(log, /measuring/, "a compressed stretch was tried on a link faster than any compressor");
    assert.ok(result.wireBytes >= result.bytesCopied);
  } else {
    // A busy machine: the target's store, not the link, set the rate, and a compressed stretch did not beat it.
    assert.match(log, /zstd took NARs in at [\d.]+ MiB\/s, uncompressed [\d.]+ MiB\/s; compression: none|too little was left to measure zstd; compression: none/);
  }
  await assertClosureVerifies(host, realFiles);
});

test('"none" sends NARs as they are, even on a slow link', async () => {
  const { host, proxy } = await hostBehindProxy("copynone", 16 * MiB);
  const session = await open(host, proxy);
  const result = await copyClosure(session, realFiles, { compress: "none" });
  result.session.close();
  assert.equal(result.compression, "none");
  assert.ok(result.wireBytes >= result.bytesCopied);
  await assertClosureVerifies(host, realFiles);
});

test("a copy of 16 MiB or more runs in a child process with its own connection; a smaller one, or one kept in process, does not", async () => {
  const big = await buildTestSystem({ label: "copy-child", fillerCount: 4, fillerBytes: 24 * MiB });
  const small = await buildTestSystem({ label: "copy-child-small", fillerCount: 4, fillerBytes: 4 * MiB });
  const host = await freshHost("copychild");
  const lines: string[] = [];
  const session = await open(host);
  const first = await copyClosure(session, big, { progress: (l) => lines.push(l) });
  assert.ok(first.childMaxRssKiB !== undefined, "the large copy ran in this process");
  // Its whole footprint (node, ssh2, the copy's garbage), far under the provider process's own.
  assert.ok(first.childMaxRssKiB < 128 * 1024, `child peak ${first.childMaxRssKiB} KiB`);
  assert.ok(first.session.isOpen, "the caller's session stays usable");
  assert.match(lines.join("\n"), /copy: \d+ of \d+ paths missing on the target/);
  // This machine and the test host (the same CPU) have AES instructions: AES-GCM is offered first.
  assert.ok(localCpuHasAes(), "this machine's CPU has AES instructions");
  assert.equal(first.childCipher, "aes128-gcm@openssh.com", lines.join("\n"));
  await assertClosureVerifies(host, big);
  const second = await copyClosure(first.session, small);
  assert.equal(second.childMaxRssKiB, undefined);
  assert.ok(second.pathsCopied > 0);
  await assertClosureVerifies(host, small);
  second.session.close();

  const other = await freshHost("copyinproc");
  const kept = await copyClosure(await open(other), big, { inProcess: true });
  kept.session.close();
  assert.equal(kept.childMaxRssKiB, undefined);
  await assertClosureVerifies(other, big);
});

test("the copy's own connection keeps chacha20-poly1305 first when the target reports no AES instructions", async () => {
  const big = await buildTestSystem({ label: "copy-child", fillerCount: 4, fillerBytes: 24 * MiB });
  const host = await freshHost("copynoaes");
  // A CPU without AES (a QEMU guest under TCG, some cloud vCPUs), as the target's /proc shows it.
  await host.run("grep -v '^flags' /proc/cpuinfo > /tmp/cpuinfo; echo 'flags : fpu sse2 avx' >> /tmp/cpuinfo; mount --bind /tmp/cpuinfo /proc/cpuinfo");
  const lines: string[] = [];
  const result = await copyClosure(await open(host), big, { progress: (l) => lines.push(l) });
  result.session.close();
  assert.equal(result.childCipher, "chacha20-poly1305@openssh.com", lines.join("\n"));
  assert.match(lines.join("\n"), /copy: own connection, cipher chacha20-poly1305@openssh\.com$/m);
  await assertClosureVerifies(host, big);
});

test("a copy whose first question to the target is cut asks again on a new connection, and a large copy still runs in its own process", async () => {
  const big = await buildTestSystem({ label: "copy-child", fillerCount: 4, fillerBytes: 24 * MiB });
  const host = await freshHost("copyrequery");
  const session = await open(host);
  session.close(); // the connection is gone before the copy asks what the target lacks
  while (session.isOpen) await new Promise((r) => setTimeout(r, 20));
  const lines: string[] = [];
  const result = await copyClosure(session, big, { progress: (l) => lines.push(l), reconnect: () => open(host) });
  result.session.close();
  assert.match(lines.join("\n"), /copy: the SSH connection was lost during the query of missing paths; reconnecting to ask again/);
  assert.ok(result.childMaxRssKiB !== undefined, `the large copy ran in the provider's process:\n${lines.join("\n")}`);
  await assertClosureVerifies(host, big);
});

test("a copy that reconnected and then failed closes the connection it opened: none is left to the target", async () => {
  const { host, proxy: door } = await hostBehindProxy("copyleak");
  const session = await open(host, door);
  session.close(); // the connection is gone before the copy asks what the target lacks
  while (session.isOpen) await new Promise((r) => setTimeout(r, 20));
  let reconnects = 0;
  const reconnect = () => (reconnects++, open(host, door));
  // The second question fails on its own (a store Nix cannot open), over the new connection.
  await assert.rejects(copyClosure(session, realFiles, { storeRoot: "/proc/no-store", reconnect }), /asking the target which paths it lacks failed/);
  assert.equal(reconnects, 1);
  for (let i = 0; i < 30 && door.openConnections() > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(door.openConnections(), 0, "the copy's new connection was closed with its failure");
});

test("a staging file the target refuses (not the path's bytes) is removed and the path sent again, so no later copy fails on it", async () => {
  const system = await buildTestSystem({ label: "copy-badstage", fillerCount: 2, fillerBytes: 4 * MiB });
  const host = await freshHost("copybadstage");
  // A staging file of the full size holding other bytes, as a corrupted earlier copy leaves it.
  const filler = (await closureOf(system)).find((p) => p.narSize >= MiB && p.path.includes("filler"))!;
  const staging = `/nix/var/nixos-pulumi/copy-staging/${filler.path.slice("/nix/store/".length)}.nar`;
  await host.run(`mkdir -p /nix/var/nixos-pulumi/copy-staging && head -c ${filler.narSize} /dev/urandom > ${staging}`);
  const lines: string[] = [];
  const result = await copyClosure(await open(host), system, { progress: (l) => lines.push(l), stageAbove: MiB, inProcess: true, compress: "none" });
  result.session.close();
  assert.match(lines.join("\n"), /the target refused the staged \S+ \(its staging file did not hold the path's bytes\); the file was removed; sending \S+ again from its start/);
  await assertClosureVerifies(host, system);
  assert.equal((await host.run("ls -A /nix/var/nixos-pulumi/copy-staging")).trim(), "", "no staging file left");
});
