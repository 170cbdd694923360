// An evaluation error fails `pulumi up` with Nix's own message, before any SSH connection,
// and leaves the host and the state as they were.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { startProxy, type TcpProxy } from "../harness/proxy";

let host: TestHost;
let proxy: TcpProxy;
let stack: TestStack;
let v1: string;
let broken: string;

const program = (system: { storePath: string } | { expression: { file: string } }) => async () => {
  const h = new NixosHost("evaluated", {
    connection: { host: proxy.address, port: proxy.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system,
  });
  return { toplevel: h.toplevel };
};

before(async () => {
  v1 = await buildTestSystem({ label: "eval-v1" });
  const dir = mkdtempSync(path.join(os.tmpdir(), "nixos-pulumi-eval-"));
  broken = path.join(dir, "broken.nix");
  writeFileSync(broken, 'let cfg = { services.nginx.enable = true; }; in cfg.services.nginx.virtualHosts."example.org"\n');
  host = await startHost({ name: "evaluated", state: "nixos", system: v1 });
  proxy = await startProxy({ target: { host: host.address, port: host.port } });
  stack = await createTestStack("eval-error", program({ storePath: v1 }));
  await stack.up();
});
after(async () => {
  await stack?.remove();
  await proxy?.close();
  await host?.stop();
});

test("an evaluation error fails the up with Nix's message, opens no SSH connection, changes nothing", async () => {
  const stateBefore = stack.stateFile();
  const connections = proxy.connectionCount();
  stack.setProgram(program({ expression: { file: broken } }));
  await assert.rejects(stack.up(), (err: Error) => {
    assert.match(err.message, /virtualHosts/);
    assert.match(err.message, /broken\.nix/);
    return true;
  });
  assert.equal(proxy.connectionCount(), connections, "no SSH connection");
  assert.equal((await host.run("readlink /run/current-system")).trim(), v1);
  const outputs = (await stack.resources()).find((r) => r.type.endsWith("NixosHost"))?.outputs;
  assert.equal(outputs?.["toplevel"], v1, "the state still records the running system");
  assert.equal(JSON.parse(stack.stateFile()).checkpoint.latest.resources.length, JSON.parse(stateBefore).checkpoint.latest.resources.length);
});
