// The fault-injection proxy in front of a test host: counts, stalls, slows and cuts.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";

let host: TestHost;
let proxy: TcpProxy;
before(async () => {
  host = await startHost({ name: "px", state: "installer" });
  proxy = await startProxy({ target: { host: host.address, port: host.port } });
});
after(async () => {
  await proxy?.close();
  await host?.stop();
});

const via = (p: TcpProxy, extra: object = {}) =>
  connectionSchema.parse({ host: p.address, port: p.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, ...extra });

test("connections through the proxy are counted", async () => {
  const before = proxy.connectionCount();
  const session = await connect(via(proxy));
  assert.equal((await session.execOk("hostname", "t")).trim(), "px");
  session.close();
  assert.equal(proxy.connectionCount(), before + 1);
});

test("cut drops open sessions; a stalled proxy makes the handshake time out", async () => {
  const session = await connect(via(proxy));
  proxy.cut();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(session.isOpen, false);

  proxy.stall();
  const started = Date.now();
  await assert.rejects(connect(via(proxy, { perDialTimeout: 1, dialErrorLimit: 1 })), /Timed out|cannot connect/);
  assert.ok(Date.now() - started >= 900);
  proxy.resume();
});

test("latency slows every exchange down", async () => {
  proxy.setLatency(0);
  let session = await connect(via(proxy));
  let t = Date.now();
  await session.execOk("true", "t");
  const fast = Date.now() - t;
  session.close();
  proxy.setLatency(150);
  session = await connect(via(proxy));
  t = Date.now();
  await session.execOk("true", "t");
  const slow = Date.now() - t;
  session.close();
  proxy.setLatency(0);
  assert.ok(slow >= fast + 250, `with latency ${slow}ms vs ${fast}ms`);
});

test("a byte rate slows a transfer down and keeps every byte in order", async () => {
  const session = await connect(via(proxy));
  try {
    proxy.setRate(50_000);
    const t = Date.now();
    const out = await session.execOk("seq 1 20000", "t"); // ~109 kB
    const elapsed = Date.now() - t;
    assert.equal(out, Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join(""));
    assert.ok(elapsed >= 1500, `109 kB at 50 kB/s took ${elapsed} ms`);
  } finally {
    proxy.setRate(0);
    session.close();
  }
});

test("a stall holds an open session's bytes until resume, without closing it", async () => {
  const session = await connect(via(proxy));
  try {
    assert.equal(proxy.openConnections() >= 1, true);
    proxy.stall();
    let done = false;
    const result = session.execOk("echo still-here", "t").then((out) => ((done = true), out));
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(done, false, "nothing came through while stalled");
    assert.equal(session.isOpen, true);
    proxy.resume();
    assert.equal((await result).trim(), "still-here");
  } finally {
    proxy.resume();
    session.close();
  }
});
