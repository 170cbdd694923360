// Two stacks aimed at one machine through the real Pulumi CLI: while the first switches,
// the second waits for it and, when its wait runs out, refuses with an error naming the
// first stack, resource, deployer host and pid. (Waiting and then switching in turn, and
// that two activations never overlap: test/integration/deploy-lock.test.ts.)
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";

let host: TestHost;
let v1: string;
let v2: string;
let v3: string;
let first: TestStack;
let second: TestStack;

const program = (system: string, options: { healthChecks?: string[]; timeoutSeconds?: number; takeOver?: string } = {}) => async () => {
  const h = new NixosHost("web", {
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: system },
    switch: { healthChecks: options.healthChecks ?? [], timeoutSeconds: options.timeoutSeconds ?? 60 },
    ...(options.takeOver ? { takeOver: options.takeOver } : {}),
  });
  return { currentSystem: h.currentSystem };
};

before(async () => {
  [v1, v2, v3] = await Promise.all([buildTestSystem({ label: "two-v1" }), buildTestSystem({ label: "two-v2" }), buildTestSystem({ label: "two-v3" })]);
  host = await startHost({ name: "shared", state: "nixos", system: v1 });
  [first, second] = await Promise.all([createTestStack("deployer-a", program(v1)), createTestStack("deployer-b", program(v1))]);
  // The first stack manages the machine; the second one takes it over (takeOver) in the test,
  // while the first is switching it (one stack refusing another's machine: host-ownership.test.ts).
  await first.up();
});
after(async () => {
  await Promise.all([first?.remove(), second?.remove()]);
  await host?.stop();
});

/** Starts `a`, and once it holds the machine's lock starts `b`. */
async function overlapping(a: TestStack, b: TestStack) {
  const from = a.output().length;
  const running = a.up();
  running.catch(() => undefined);
  while (!/lock: holding the deploy lock/.test(a.output().slice(from))) await new Promise((r) => setTimeout(r, 100));
  const other = await b.up().then(
    (r) => ({ ok: true as const, r }),
    (err: Error) => ({ ok: false as const, err }),
  );
  return { first: await running, second: other };
}

test("the second stack refuses after its bounded wait, naming the first stack", async () => {
  first.setProgram(program(v2, { healthChecks: ["sleep 6"] }));
  second.setProgram(program(v3, { timeoutSeconds: 2, takeOver: "test-deployer-a/test" }));
  const { first: a, second: b } = await overlapping(first, second);
  assert.equal(a.outputs["currentSystem"]?.value, v2);
  assert.equal(b.ok, false);
  if (!b.ok) {
    assert.match(b.err.message, /another deployment holds this machine: stack test-deployer-a\/test, resource web from \S+ \(pid \d+, started /);
    assert.match(b.err.message, /gave up after waiting 2s/);
  }
  assert.match(second.output(), /is being deployed by stack test-deployer-a\/test, resource web/, "it waited, naming the first");
  assert.equal((await host.run("readlink /run/current-system")).trim(), v2, "the refused stack changed nothing");
});
