// After an activation the provider waits for the machine up to the documented deadline
// (switch.confirmTimeoutSeconds + switch.timeoutSeconds), not dialErrorLimit half-second
// attempts; past it the verdict is unknown, and the error says where it is recorded and that
// the next run reads it, which the next switch does. Every session a switch opened (the
// reconnects included) is closed when it fails.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { switchHost } from "../../provider/host/operations";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy, type TcpProxy } from "../harness/proxy";
import { buildTestSystem } from "../harness/systems";

const hosts: TestHost[] = [];
const proxies: TcpProxy[] = [];
after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(hosts.map((h) => h.stop()));
});

async function nixosHost(name: string, label: string) {
  const base = await buildTestSystem({ label });
  const host = await startHost({ name, state: "nixos", system: base });
  hosts.push(host);
  return { host, base };
}

const specFor = (host: TestHost, storePath: string, extra: { switch?: object; port?: number; address?: string } = {}) =>
  nixosHostSchema.parse({
    // The default dial limits (dialErrorLimit 10, perDialTimeout 15 s), as a user has them.
    connection: { host: extra.address ?? host.address, port: extra.port ?? host.port, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath },
    switch: { rollback: "on-failure", ...extra.switch },
  });

const onHost = async (host: TestHost, command: string) => (await host.run(command)).trim();

async function sshdBack(host: TestHost) {
  const session = await connect(connectionSchema.parse({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey }), { deadlineSeconds: 60 });
  session.close();
}

test("sshd down for 20 s after a successful switch: the provider waits for it and records the new system", async () => {
  const { host } = await nixosHost("lostwait", "lost-wait-base");
  const lossy = await buildTestSystem({ label: "lost-wait", variant: "lose-ssh" });
  const lines: string[] = [];
  const started = Date.now();
  const facts = await switchHost(specFor(host, lossy), lossy, undefined, (l) => lines.push(l));
  assert.equal(facts.currentSystem, lossy, lines.join("\n"));
  assert.equal(await onHost(host, "readlink /run/current-system"), lossy);
  assert.ok(Date.now() - started >= 15_000, "it waited for sshd to come back");
  assert.match(lines.join("\n"), /connection dropped; reconnecting to read the verdict/);
});

test("sshd down longer than the deadline: the verdict is unknown and said so; the next switch reads it and records the truth", async () => {
  const { host } = await nixosHost("lostunknown", "lost-unknown-base");
  const lossy = await buildTestSystem({ label: "lost-unknown", variant: "lose-ssh" });
  // Deadline 5 + 5 s, sshd down for 20 s.
  let runDir = "";
  await assert.rejects(switchHost(specFor(host, lossy, { switch: { confirmTimeoutSeconds: 5, timeoutSeconds: 5 } }), lossy, undefined, () => {}), (err: Error) => {
    assert.match(err.message, /the verdict of the activation of \S+-lost-unknown is unknown: the machine could not be reached again to read it \(cannot connect as root: .*ECONNREFUSED.*deadline 10 s\)/);
    const dir = /records its verdict on the machine in (\/run\/nixos-pulumi\/switch\.[0-9]+-[0-9a-f]+)/.exec(err.message);
    assert.ok(dir, err.message);
    runDir = dir[1]!;
    assert.match(err.message, /the next `pulumi up` reads that verdict and records the system the host runs/);
    return true;
  });
  await sshdBack(host);
  assert.equal(await onHost(host, `cat ${runDir}/result`), "ok", "the switch succeeded meanwhile");
  const generation = await onHost(host, "readlink /nix/var/nix/profiles/system");

  const lines: string[] = [];
  const facts = await switchHost(specFor(host, lossy, { switch: { timeoutSeconds: 60 } }), lossy, undefined, (l) => lines.push(l));
  const log = lines.join("\n");
  assert.equal(facts.currentSystem, lossy, log);
  assert.match(log, new RegExp(`activate: the activation of \\S+-lost-unknown started by an earlier run \\(${runDir}\\) succeeded; its verdict was left unread until now`));
  assert.match(log, /already active \(an earlier run's activation succeeded\); recording it without switching again/);
  assert.doesNotMatch(log, /is being deployed by/, "the first switch's lock was let go once the machine was back");
  assert.equal(await onHost(host, "readlink /nix/var/nix/profiles/system"), generation, "not switched a second time");
  assert.equal(await onHost(host, `[ -e ${runDir} ] && echo left || echo removed`), "removed");
});

test("an activation that reconnected and then failed leaves no SSH connection open", async () => {
  const { host, base } = await nixosHost("lostleak", "lost-leak-base");
  const proxy = await startProxy({ target: { host: host.address, port: host.port } });
  proxies.push(proxy);
  const cutter = await buildTestSystem({ label: "lost-leak", variant: "cut-ssh" });
  const spec = specFor(host, cutter, { address: proxy.address, port: proxy.port, switch: { healthChecks: ["false"] } });
  await assert.rejects(switchHost(spec, cutter, undefined, () => {}), /health check failed[\s\S]*rolled back/);
  assert.equal(await onHost(host, "readlink /run/current-system"), base);
  for (let i = 0; i < 50 && proxy.openConnections() > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(proxy.openConnections(), 0, "every session of the switch was closed");
});
