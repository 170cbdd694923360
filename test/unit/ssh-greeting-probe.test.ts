// The greeting probe the kexec and reboot waits run before each full dial: greeted only when an
// SSH identification line arrives in time, else the reason, on loopback servers that answer or stay
// silent; and the staggered probes that see a machine coming back within about a second.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as net from "node:net";
import { sshGreetingSoon, sshGreetingWithin } from "../../provider/ssh";

async function server(onConnection: (socket: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as net.AddressInfo;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

test("an sshd's identification line, also after other lines (RFC 4253 4.2), is a greeting", async () => {
  const plain = await server((s) => s.write("SSH-2.0-OpenSSH_9.9\r\n"));
  const banner = await server((s) => s.write("welcome\r\nSSH-2.0-OpenSSH_9.9\r\n"));
  try {
    assert.deepEqual(await sshGreetingWithin("127.0.0.1", plain.port, 2000), { greeted: true });
    assert.deepEqual(await sshGreetingWithin("127.0.0.1", banner.port, 2000), { greeted: true });
  } finally {
    await plain.close();
    await banner.close();
  }
});

test("a port that accepts and stays silent (a booting machine behind a forward) is no greeting, after the probe's timeout only", async () => {
  const silent = await server(() => undefined);
  const other = await server((s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
  try {
    const started = Date.now();
    assert.deepEqual(await sshGreetingWithin("127.0.0.1", silent.port, 500), { greeted: false, reason: "accepted TCP but sent no SSH greeting within 0.5 s" });
    const waited = Date.now() - started;
    assert.ok(waited >= 450 && waited < 2000, `waited ${waited} ms`);
    assert.deepEqual(await sshGreetingWithin("127.0.0.1", other.port, 2000), { greeted: false, reason: "closed the connection without an SSH greeting" });
  } finally {
    await silent.close();
    await other.close();
  }
});

test("a refused port is no greeting, at once", async () => {
  const closed = await server(() => undefined);
  const { port } = closed;
  await closed.close();
  const started = Date.now();
  const probe = await sshGreetingWithin("127.0.0.1", port, 5000);
  assert.ok(!probe.greeted && /ECONNREFUSED/.test(probe.reason), JSON.stringify(probe));
  assert.ok(Date.now() - started < 2000);
});

test("probes a second apart see a forward that starts answering within a second; one probe at a time would not", async () => {
  // A port forward in front of a booting machine: it accepts every connection, and only those
  // whose SYN reaches the machine once its sshd is up ever get a greeting.
  let upAt = Infinity;
  const open = new Set<net.Socket>();
  const forward = await server((s) => {
    open.add(s);
    s.on("close", () => open.delete(s));
    if (Date.now() >= upAt) s.write("SSH-2.0-OpenSSH_9.9\r\n");
  });
  try {
    const started = Date.now();
    upAt = started + 1200;
    const probe = await sshGreetingSoon("127.0.0.1", forward.port, { windowMs: 5000, everyMs: 500 });
    const seen = Date.now() - upAt;
    assert.deepEqual(probe, { greeted: true });
    assert.ok(seen >= 0 && seen < 900, `seen ${seen} ms after the forward started answering`);
    // Every probe's connection is closed once one greeted.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(open.size, 0, `${open.size} probe connections left open`);

    upAt = Date.now() + 1200;
    const single = await sshGreetingWithin("127.0.0.1", forward.port, 3000);
    assert.equal(single.greeted, false, "one probe started before the forward answered never sees it");
  } finally {
    await forward.close();
  }
});

test("probes that find no greeting end with the window and the last reason", async () => {
  const silent = await server(() => undefined);
  try {
    const started = Date.now();
    const probe = await sshGreetingSoon("127.0.0.1", silent.port, { windowMs: 1500, everyMs: 500 });
    const waited = Date.now() - started;
    assert.equal(probe.greeted, false);
    assert.match((probe as { reason: string }).reason, /accepted TCP but sent no SSH greeting/);
    assert.ok(waited >= 1400 && waited < 2500, `waited ${waited} ms`);
  } finally {
    await silent.close();
  }
});
