// A copy cut mid-way (the fault proxy drops the connection) reconnects and resumes: the
// target ends with every path registered and intact, nothing half-registered, no staging
// files left, and only what it still lacked is sent again; a single large path resumes at
// the byte its staging file reached instead of starting over.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { copyClosure } from "../../provider/copy";
import { connectionSchema } from "../../provider/schema/connection";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";
import { buildTestSystem } from "../harness/systems";
import { assertClosureVerifies } from "../harness/store-verify";

const MiB = 1024 * 1024;
/** Bytes a cut can lose in transit: ssh2's channel buffer and window (2 + 2 MiB), a 64 KiB pipe read, the proxy's 1 MiB queue. */
const IN_FLIGHT = 8 * MiB;
const hosts: TestHost[] = [];
const proxies: TcpProxy[] = [];
after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(hosts.map((h) => h.stop()));
});

async function slowHost(name: string, rate: number) {
  const host = await startHost({ name, state: "installer" });
  hosts.push(host);
  const proxy = await startProxy({ target: { host: host.address, port: host.port } });
  proxies.push(proxy);
  proxy.setRate(rate);
  const open = () =>
    connect(connectionSchema.parse({ host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, dialErrorLimit: 3 }), {
      retryIntervalMs: 200,
    });
  return { host, proxy, open };
}

/** A progress reporter that cuts every connection once the copy has read `fraction` of its bytes. */
function cutAt(proxy: TcpProxy, fraction: number, lines: string[]) {
  let cut = false;
  return (line: string) => {
    lines.push(line);
    const m = /copy: \d+\/\d+ paths, ([\d.]+)\/([\d.]+) MiB/.exec(line);
    if (!cut && m && Number(m[1]) >= fraction * Number(m[2])) {
      cut = true;
      lines.push("-- cut --");
      proxy.cut();
    }
  };
}

test("a copy of many paths cut at half reconnects and sends only what the target still lacks", async () => {
  const system = await buildTestSystem({ label: "resume-many", fillerCount: 40, fillerBytes: 24 * MiB });
  const { host, proxy, open } = await slowHost("resumemany", 3 * MiB);
  const lines: string[] = [];
  const result = await copyClosure(await open(), system, { compress: "none", reconnect: open, progress: cutAt(proxy, 0.5, lines) });
  result.session.close();
  const log = lines.join("\n");
  assert.equal(result.resumes, 1, log);
  assert.match(log, /-- cut --[\s\S]*connection was lost[\s\S]*reconnecting to resume \(1\/5\)/);
  // Every path the target acknowledged before the cut is left out of the resumed copy.
  const registered = Number(/\((\d+) registered\)/.exec(log)?.[1]);
  const resumed = Number(/resuming, the target still lacks (\d+) paths/.exec(log)?.[1]);
  assert.ok(registered > 0 && resumed > 0, log);
  assert.equal(resumed, result.pathsCopied - registered, log);
  // What is resent is only what was in flight at the cut (SSH window, channel and proxy buffers).
  assert.ok(result.wireBytes < result.bytesCopied + IN_FLIGHT, `${result.wireBytes} bytes sent for ${result.bytesCopied}\n${log}`);
  assert.ok(proxy.connectionCount() >= 2);
  await assertClosureVerifies(host, system);
});

test("a single large path cut at half resumes within the path from its staging file", async () => {
  const system = await buildTestSystem({ label: "resume-one", fillerCount: 1, fillerBytes: 24 * MiB });
  const { host, proxy, open } = await slowHost("resumeone", 3 * MiB);
  const lines: string[] = [];
  const result = await copyClosure(await open(), system, { compress: "none", stageAbove: 8 * MiB, reconnect: open, progress: cutAt(proxy, 0.5, lines) });
  result.session.close();
  const log = lines.join("\n");
  assert.equal(result.resumes, 1, log);
  assert.equal(result.resumedWithinPath.length, 1, log);
  // The cut came when half the NAR was read here; the staging file holds that less what was in flight.
  assert.ok(result.resumedWithinPath[0]! >= 12 * MiB - IN_FLIGHT, `resumed at ${result.resumedWithinPath[0]}\n${log}`);
  assert.match(log, /resumed \/nix\/store\/\S+-filler-f-0 at [\d.]+ of 24\.0 MiB/);
  assert.ok(result.wireBytes < result.bytesCopied + IN_FLIGHT, `${result.wireBytes} bytes sent for ${result.bytesCopied}\n${log}`);
  await assertClosureVerifies(host, system);
});

test("without a way to reconnect, a cut copy fails saying it resumes; the next copy sends only the rest", async () => {
  const system = await buildTestSystem({ label: "resume-none", fillerCount: 20, fillerBytes: 12 * MiB });
  const { host, proxy, open } = await slowHost("resumenone", 3 * MiB);
  const lines: string[] = [];
  const session = await open();
  let registered = 0;
  await assert.rejects(copyClosure(session, system, { compress: "none", progress: cutAt(proxy, 0.5, lines) }), (err: Error) => {
    assert.match(err.message, /connection was lost during the copy of \d+ paths \((\d+) registered\)/);
    assert.match(err.message, /next copy sends only the rest/);
    registered = Number(/\((\d+) registered\)/.exec(err.message)![1]);
    return true;
  });
  assert.ok(registered > 0, lines.join("\n"));
  const again = await copyClosure(await open(), system, { compress: "none" });
  again.session.close();
  assert.equal(again.pathsCopied, again.pathsTotal - registered);
  await assertClosureVerifies(host, system);
});

test("a target whose flock has no -w (busybox's) gets a large path streamed, not staged; cut at half, that path is sent again whole", async () => {
  const system = await buildTestSystem({ label: "resume-noflockw", fillerCount: 1, fillerBytes: 24 * MiB });
  const { host, proxy, open } = await slowHost("resumenoflock", 3 * MiB);
  // busybox's flock refuses -w; bound over util-linux's in this host's own mount namespace only.
  await host.run(`printf '#!/bin/sh\\necho "flock: unrecognized option: w" >&2\\nexit 1\\n' > /tmp/flock && chmod +x /tmp/flock && mount --bind /tmp/flock "$(command -v flock)"`);
  assert.notEqual((await host.exec("flock -w 1 / true")).code, 0);
  const lines: string[] = [];
  const result = await copyClosure(await open(), system, { compress: "none", stageAbove: 8 * MiB, reconnect: open, progress: cutAt(proxy, 0.5, lines) });
  result.session.close();
  const log = lines.join("\n");
  assert.equal(result.resumes, 1, log);
  assert.deepEqual(result.resumedWithinPath, [], "nothing was staged, so nothing resumes within the path");
  assert.doesNotMatch(log, /resumed \/nix\/store\//, log);
  // The cut path goes again from its first byte: more than the half already sent is resent.
  assert.ok(result.wireBytes >= result.bytesCopied + 12 * MiB - IN_FLIGHT, `${result.wireBytes} bytes sent for ${result.bytesCopied}\n${log}`);
  assert.notEqual((await host.exec("test -e /nix/var/nixos-pulumi/copy-staging")).code, 0, "no staging directory was made");
  await assertClosureVerifies(host, system);
});
