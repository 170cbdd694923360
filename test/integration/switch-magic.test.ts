// Magic rollback: the new system must be confirmed by the deployer over a NEW connection
// within the confirm timeout, or the host rolls itself back (deploy-rs's idea, without
// confirming through a reused, possibly stale, connection).
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { copyClosure } from "../../provider/copy";
import { activate } from "../../provider/switch";
import { connectionSchema } from "../../provider/schema/connection";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { switchHost } from "../../provider/host/operations";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";
import { buildTestSystem } from "../harness/systems";

let host: TestHost;
let proxy: TcpProxy;
let base: string;
before(async () => {
  base = await buildTestSystem({ label: "magic-base" });
  host = await startHost({ name: "magic", state: "nixos", system: base });
  proxy = await startProxy({ target: { host: host.address, port: host.port } });
});
after(async () => {
  await proxy?.close();
  await host?.stop();
});

const open = () =>
  connect(connectionSchema.parse({ host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, dialErrorLimit: 30 }), {
    retryIntervalMs: 1000,
    deadlineSeconds: 60,
  });
const current = async () => (await host.run("readlink /run/current-system")).trim();

test("a reachable new system is confirmed over a second connection and stays", async () => {
  const next = await buildTestSystem({ label: "magic-ok" });
  const session = await open();
  await copyClosure(session, next);
  const before = proxy.connectionCount();
  const logs: string[] = [];
  await activate(session, { toplevel: next, action: "switch", rollback: "magic", confirmTimeoutSeconds: 10, timeoutSeconds: 60, reconnect: open, log: (l) => logs.push(l) });
  session.close();
  assert.equal(proxy.connectionCount(), before + 1, "the confirmation came over a new connection");
  assert.ok(logs.some((l) => /confirming over a new connection/.test(l)), logs.join("\n"));
  assert.equal(await current(), next);
});

test("a new system that loses SSH cannot be confirmed and rolls itself back", async () => {
  const before = await current();
  const broken = await buildTestSystem({ label: "magic-lost", variant: "lose-ssh" });
  const session = await open();
  await copyClosure(session, broken);
  await assert.rejects(
    activate(session, { toplevel: broken, action: "switch", rollback: "magic", confirmTimeoutSeconds: 5, timeoutSeconds: 90, reconnect: open }),
    (err: Error) => {
      assert.match(err.message, /could not confirm the new system/);
      assert.match(err.message, /rolled back/);
      return true;
    },
  );
  session.close();
  assert.equal(await current(), before);
  assert.equal((await host.run("readlink -f /nix/var/nix/profiles/system")).trim(), before);
});

test("a NixosHost switch with magic rollback through an activation that cuts SSH ends with complete facts", async () => {
  const cutter = await buildTestSystem({ label: "magic-cut", variant: "cut-ssh" });
  const spec = nixosHostSchema.parse({
    connection: { host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, dialErrorLimit: 30 },
    system: { storePath: cutter },
    switch: { rollback: "magic", confirmTimeoutSeconds: 15 },
  });
  const facts = await switchHost(spec, cutter, undefined, () => {});
  assert.equal(facts.currentSystem, cutter);
  assert.equal(facts.hostKey, host.hostPublicKey);
  assert.ok(facts.generation >= 2);
});
