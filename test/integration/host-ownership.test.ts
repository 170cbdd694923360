// The owner record on a real test host: an install never wipes, and an adopt never records, a
// machine another stack manages; both refuse before anything runs there. (Through the real
// Pulumi CLI, switch and takeover: test/e2e/host-ownership.test.ts.)
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { adoptHost, installHost } from "../../provider/host/operations";
import { OWNER_RECORD } from "../../provider/switch/owner-record";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { LAYOUT } from "../fixtures/state/layout";

const PROD = { stack: "shop/prod", resource: "urn:pulumi:prod::shop::pulumi-nodejs:dynamic/nixos-pulumi:NixosHost::web" };
const STAGING = { stack: "shop/staging", resource: "urn:pulumi:staging::shop::pulumi-nodejs:dynamic/nixos-pulumi:NixosHost::web" };

let host: TestHost;
let v1: string;

const spec = (extra: Record<string, unknown> = {}) =>
  nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, dialErrorLimit: 1 },
    system: { storePath: v1 },
    ...extra,
  });

before(async () => {
  v1 = await buildTestSystem({ label: "owned-v1" });
  host = await startHost({ name: "prodweb", state: "nixos", system: v1 });
  await host.run(`mkdir -p /nix/var/nixos-pulumi && echo '${PROD.stack} ${PROD.resource}' > ${OWNER_RECORD}`);
});
after(async () => {
  await host?.stop();
});

test("an install from another stack refuses before the kexec: no kexec started, nothing wiped", async () => {
  const lines: string[] = [];
  await assert.rejects(
    installHost(spec({ diskLayout: { declared: LAYOUT }, install: { kexecTarball: "/nonexistent/kexec.tar.gz" } }), v1, (l) => lines.push(l), "stack shop/staging, resource web", STAGING),
    /ownership\] this machine is managed by stack shop\/prod .*\nfix: to move the machine to this stack on purpose, set takeOver: "shop\/prod"/s,
  );
  assert.doesNotMatch(lines.join("\n"), /kexec:/, "no kexec step started");
  assert.equal((await host.run("readlink /run/current-system")).trim(), v1);
  assert.match(await host.run(`cat ${OWNER_RECORD}`), /^shop\/prod /);
});

test("adopting a machine that already runs the system records nothing for another stack; with takeOver it does", async () => {
  await assert.rejects(adoptHost(spec(), v1, () => {}, "stack shop/staging, resource web", STAGING), /managed by stack shop\/prod/);
  assert.match(await host.run(`cat ${OWNER_RECORD}`), /^shop\/prod /);
  const lines: string[] = [];
  await adoptHost(spec({ takeOver: "shop/prod" }), v1, (l) => lines.push(l), "stack shop/staging, resource web", STAGING);
  assert.equal((await host.run(`cat ${OWNER_RECORD}`)).trim(), `${STAGING.stack} ${STAGING.resource}`);
  assert.match(lines.join("\n"), /ownership: took this machine over from stack shop\/prod/);
});
