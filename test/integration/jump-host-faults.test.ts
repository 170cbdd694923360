// Jump host faults, each failing only that connection with a clear error within a bounded
// time: a dead jump host, a jump host that accepts TCP but never speaks SSH, a target the
// jump host cannot reach, and a silent target behind a working jump host. No failed dial
// leaves a connection to the jump host open.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";

let jump: TestHost;
let target: TestHost;
let jumpDoor: TcpProxy;
let targetDoor: TcpProxy;

before(async () => {
  [jump, target] = await Promise.all([startHost({ name: "bastion" }), startHost({ name: "behind" })]);
  jumpDoor = await startProxy({ target: { host: jump.address, port: jump.port } });
  targetDoor = await startProxy({ target: { host: target.address, port: target.port } });
});
after(async () => {
  await jumpDoor?.close();
  await targetDoor?.close();
  await Promise.all([jump?.stop(), target?.stop()]);
});

function via(proxy: { host: string; port: number }, to: { host: string; port: number } = { host: target.address, port: target.port }) {
  return connectionSchema.parse({
    ...to,
    privateKey: target.clientPrivateKey,
    hostKey: target.hostPublicKey,
    perDialTimeout: 3,
    proxy: { ...proxy, privateKey: jump.clientPrivateKey, hostKey: jump.hostPublicKey, perDialTimeout: 3 },
  });
}

async function failsWithin(seconds: number, connection: ReturnType<typeof via>, pattern: RegExp): Promise<string> {
  const started = Date.now();
  let message = "";
  await assert.rejects(connect(connection, { retryIntervalMs: 200 }), (err: Error) => {
    message = err.message;
    assert.match(err.message, pattern);
    return true;
  });
  const took = (Date.now() - started) / 1000;
  assert.ok(took < seconds, `took ${took.toFixed(1)}s, bound ${seconds}s: ${message}`);
  return message;
}

test("through a working jump host the target is reached", async () => {
  const session = await connect(via({ host: jumpDoor.address, port: jumpDoor.port }));
  try {
    assert.equal((await session.execOk("hostname", "test")).trim(), "behind");
  } finally {
    session.close();
  }
});

test("a dead jump host fails fast, naming the jump host", async () => {
  const dead = await startProxy({ target: { host: jump.address, port: jump.port } });
  const at = { host: dead.address, port: dead.port };
  await dead.close();
  const message = await failsWithin(5, via(at), /jump host \(connection\.proxy\): cannot connect as root: .*ECONNREFUSED/);
  assert.match(message, new RegExp(`\\[${at.host}:${at.port}: connect\\]`));
  assert.match(message, /fix: nothing accepts connections on .*connection\.proxy\.host and connection\.proxy\.port/);
});

test("a jump host that accepts TCP but never speaks SSH fails within perDialTimeout", async () => {
  jumpDoor.stall();
  try {
    await failsWithin(6, via({ host: jumpDoor.address, port: jumpDoor.port }), /jump host \(connection\.proxy\): .*accepted TCP but sent no SSH greeting within 3 s/);
  } finally {
    jumpDoor.cut();
    jumpDoor.resume();
  }
});

test("a target the jump host cannot reach fails fast, and the jump connection is closed", async () => {
  await failsWithin(5, via({ host: jumpDoor.address, port: jumpDoor.port }, { host: target.address, port: 2 }), /jump host could not reach .*:2/);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(jumpDoor.openConnections(), 0, "no connection to the jump host left open");
});

test("a silent target behind a working jump host fails within perDialTimeout, and the jump connection is closed", async () => {
  targetDoor.stall();
  try {
    await failsWithin(6, via({ host: jumpDoor.address, port: jumpDoor.port }, { host: targetDoor.address, port: targetDoor.port }), /accepted TCP but sent no SSH greeting/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(jumpDoor.openConnections(), 0, "no connection to the jump host left open");
  } finally {
    targetDoor.cut();
    targetDoor.resume();
  }
});
