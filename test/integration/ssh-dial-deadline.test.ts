// Dials fail fast: a refused port after a few quick attempts, a server that accepts TCP but
// never speaks SSH after connection.perDialTimeout; both errors show the attempts and the deadline;
// a server that closes after its banner is a failed dial, retried, never a hang.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as net from "node:net";
import { connect } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { generateKeyPair } from "../harness/keys";

async function listen(onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}
const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port;

test("a refused port fails within seconds, naming the attempts, the deadline and the fix", async () => {
  const key = await generateKeyPair("dial-refused");
  const closed = await listen(() => {});
  const port = portOf(closed);
  await new Promise((r) => closed.close(r));
  const started = Date.now();
  await assert.rejects(connect(connectionSchema.parse({ host: "127.0.0.1", port, privateKey: key.privateKey })), (err: Error) => {
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, /3 attempts in [0-9.]+ s; deadline 15 s/);
    assert.match(err.message, /nothing accepts connections on 127\.0\.0\.1:\d+: check connection\.host and connection\.port/);
    return true;
  });
  assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
});

test("a server that accepts TCP but never speaks SSH fails at perDialTimeout, not minutes later", async () => {
  const key = await generateKeyPair("dial-silent");
  const sockets: net.Socket[] = [];
  const silent = await listen((s) => sockets.push(s));
  try {
    const started = Date.now();
    await assert.rejects(connect(connectionSchema.parse({ host: "127.0.0.1", port: portOf(silent), privateKey: key.privateKey, perDialTimeout: 3 })), (err: Error) => {
      assert.match(err.message, /accepted TCP but sent no SSH greeting within 3 s \(1 attempt in [0-9.]+ s; deadline 3 s\)/);
      assert.match(err.message, /is an SSH server/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 2900 && took < 5000, `took ${took} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

test("a server that sends its banner and then closes (an sshd going down) fails the dial and is retried, never hangs", { timeout: 30_000 }, async () => {
  const key = await generateKeyPair("dial-banner-close");
  const sockets: net.Socket[] = [];
  const closing = await listen((s) => {
    sockets.push(s);
    s.resume();
    s.end("SSH-2.0-OpenSSH_9.6\r\n");
  });
  try {
    const started = Date.now();
    await assert.rejects(
      connect(connectionSchema.parse({ host: "127.0.0.1", port: portOf(closing), privateKey: key.privateKey, perDialTimeout: 30 }), { retryIntervalMs: 100 }),
      (err: Error) => {
        assert.match(err.message, /closed the connection/);
        return true;
      },
    );
    assert.ok(sockets.length >= 2, `retried: ${sockets.length} dials`);
    // The dialer closed its side of every connection: nothing is left half-open.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(sockets.filter((s) => !s.destroyed).length, 0, "connections left open by the dialer");
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => closing.close(r));
  }
});

test("with a deadline from the caller (a machine coming back), a refused port is retried until it opens", async () => {
  const key = await generateKeyPair("dial-late");
  const probe = await listen(() => {});
  const port = portOf(probe);
  await new Promise((r) => probe.close(r));
  // Something starts listening after 2 s; it is no SSH server, so the dial ends with its silence.
  let late: net.Server | undefined;
  const sockets: net.Socket[] = [];
  const timer = setTimeout(() => {
    late = net.createServer((s) => sockets.push(s)).listen(port, "127.0.0.1");
  }, 2000);
  try {
    await assert.rejects(
      connect(connectionSchema.parse({ host: "127.0.0.1", port, privateKey: key.privateKey, perDialTimeout: 2, dialErrorLimit: 50 }), { deadlineSeconds: 5, retryIntervalMs: 200 }),
      /no SSH greeting/,
    );
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
    if (late) await new Promise((r) => late!.close(r));
  }
});
