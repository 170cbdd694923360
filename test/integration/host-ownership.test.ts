// The owner record on a real test host: an install never wipes, an adopt never records, and an
// update never sends anything to a machine another stack manages; each refuses before anything
// runs there. (Through the real
// Pulumi CLI, switch and takeover: test/e2e/host-ownership.test.ts.)
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { adoptHost, installHost, switchHost } from "../../provider/host/operations";
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

test("an update from another stack refuses before anything is sent: the new system's paths never reach the machine", async () => {
  const v2 = await buildTestSystem({ label: "owned-v2" });
  const owner = (await host.run(`cat ${OWNER_RECORD}`)).split(" ")[0]!;
  const other = owner === PROD.stack ? STAGING : PROD;
  const lines: string[] = [];
  await assert.rejects(
    switchHost(spec({ system: { storePath: v2 } }), v2, host.hostPublicKey, (l) => lines.push(l), { who: `stack ${other.stack}, resource web`, owner: other }),
    new RegExp(`managed by stack ${owner.replace("/", "\\/")}`),
  );
  assert.doesNotMatch(lines.join("\n"), /copy:/, "no copy step reported");
  assert.equal((await host.run(`nix-store --check-validity ${v2} 2>/dev/null && echo valid || echo missing`)).trim(), "missing");
  assert.equal((await host.run("readlink /run/current-system")).trim(), v1);
});

test("an update by the stack that manages the machine leaves its record as it is; a record gone missing is written again", async () => {
  const line = (await host.run(`cat ${OWNER_RECORD}`)).trim();
  const manager = line.startsWith(PROD.stack) ? PROD : STAGING;
  const stat = async () => (await host.run(`stat -c '%i %Y.%y' ${OWNER_RECORD}`)).trim();
  const untouched = await stat();
  const v3 = await buildTestSystem({ label: "owned-v3" });
  await switchHost(spec({ system: { storePath: v3 } }), v3, host.hostPublicKey, () => {}, { who: `stack ${manager.stack}, resource web`, owner: manager });
  assert.equal((await host.run("readlink /run/current-system")).trim(), v3);
  assert.equal(await stat(), untouched, "the same record, not rewritten");
  await host.run(`rm ${OWNER_RECORD}`);
  await switchHost(spec({ system: { storePath: v1 } }), v1, host.hostPublicKey, () => {}, { who: `stack ${manager.stack}, resource web`, owner: manager });
  assert.equal((await host.run(`cat ${OWNER_RECORD}`)).trim(), `${manager.stack} ${manager.resource}`);
});
