// A rollback restores what the machine had, recorded before the switch: the profile's
// generation (and the boot default, which follows the profile's generations only) and the
// running system. They can disagree — a generation left above the current one by a manual
// `nix-env --rollback`, a `test` activation — and then `nix-env --rollback` (the generation
// below the newest) or the profile's system would be the wrong target.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect, type SshSession } from "../../provider/ssh";
import { copyClosure } from "../../provider/copy";
import { activate } from "../../provider/switch";
import { connectionSchema } from "../../provider/schema/connection";
import { copyToHostStore, startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

let host: TestHost;
let base: string;
before(async () => {
  base = await buildTestSystem({ label: "rb-base" });
  host = await startHost({ name: "rb", state: "nixos", system: base });
});
after(async () => host?.stop());

const open = () => connect(connectionSchema.parse({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }), { deadlineSeconds: 30 });
const read = async (command: string) => (await host.run(command)).trim();
const profileSystem = () => read("readlink -f /nix/var/nix/profiles/system");

async function failingSwitch(session: SshSession, action: "switch" | "test", label: string) {
  const broken = await buildTestSystem({ label, variant: "fail" });
  await copyClosure(session, broken);
  await assert.rejects(activate(session, { toplevel: broken, action, rollback: "on-failure", timeoutSeconds: 60, reconnect: open }), /rolled back/);
}

test("a failed switch puts the profile back on the generation it had, not on the one below the newest", async () => {
  // Generation 2 is left above the current generation 1, as a manual `nix-env --rollback` leaves it.
  const stale = await buildTestSystem({ label: "rb-stale" });
  await copyToHostStore(host, stale);
  await host.run(`nix-env -p /nix/var/nix/profiles/system --set ${stale} && nix-env -p /nix/var/nix/profiles/system --rollback`);
  assert.equal(await profileSystem(), base);
  const session = await open();
  try {
    await failingSwitch(session, "switch", "rb-broken");
  } finally {
    session.close();
  }
  assert.equal(await profileSystem(), base, "the profile is on the system it had");
  assert.equal(await read("cat /boot/default-system"), base, "and so is the boot default");
  assert.equal(await read("readlink /run/current-system"), base);
});

test("a failed `test` activation goes back to the running system, not to the profile's", async () => {
  const tried = await buildTestSystem({ label: "rb-tried" });
  await copyToHostStore(host, tried);
  await host.run(`${tried}/bin/switch-to-configuration test`);
  const session = await open();
  try {
    await failingSwitch(session, "test", "rb-broken-test");
  } finally {
    session.close();
  }
  assert.equal(await read("readlink /run/current-system"), tried, "the system that ran before");
  assert.equal(await profileSystem(), base, "the profile untouched");
});
