// Two stacks that manage one machine, one after the other, through the real Pulumi CLI. The
// machine records the stack and resource that manage it; a second stack is refused before
// anything changes, naming the first and how to take the machine over; with `takeOver` it
// does, and the first stack says so at its next refresh and refuses its next up.
// (Two stacks deploying at the same moment: test/e2e/two-deployers.test.ts.)
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";

const OWNER_RECORD = "/nix/var/nixos-pulumi/owner";

let host: TestHost;
let v1: string;
let v2: string;
let first: TestStack;
let second: TestStack;

const program = (system: string, takeOver?: string) => async () => {
  const h = new NixosHost("web", {
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: system },
    ...(takeOver ? { takeOver } : {}),
  });
  return { currentSystem: h.currentSystem };
};

const onHost = async (cmd: string) => (await host.run(cmd)).trim();
const hostUrn = async (s: TestStack) => (await s.resources()).find((r) => r.type.endsWith("NixosHost"))?.urn;

before(async () => {
  [v1, v2] = await Promise.all([buildTestSystem({ label: "own-v1" }), buildTestSystem({ label: "own-v2" })]);
  host = await startHost({ name: "owned", state: "nixos", system: v1 });
  [first, second] = await Promise.all([createTestStack("owner-a", program(v1)), createTestStack("owner-b", program(v2))]);
});
after(async () => {
  await Promise.all([first?.remove(), second?.remove()]);
  await host?.stop();
});

test("the machine records the stack and resource that manage it", async () => {
  await first.up();
  const urn = await hostUrn(first);
  assert.ok(urn?.endsWith("::web"), first.output());
  assert.equal(await onHost(`cat ${OWNER_RECORD}`), `test-owner-a/test ${urn}`);
});

test("a second stack is refused before anything changes, naming the first and how to take the machine over", async () => {
  const generation = await onHost("readlink /nix/var/nix/profiles/system");
  await assert.rejects(second.up(), (err: Error) => {
    assert.match(err.message, /\[[\d.]+: ownership\] this machine is managed by stack test-owner-a\/test \(resource urn:pulumi:test::test-owner-a::[^)]*::web\); stack test-owner-b\/test/);
    assert.match(err.message, /fix: to move the machine to this stack on purpose, set takeOver: "test-owner-a\/test" on this NixosHost/);
    return true;
  });
  assert.equal(await onHost("readlink /run/current-system"), v1);
  assert.equal(await onHost("readlink /nix/var/nix/profiles/system"), generation, "no new generation");
  assert.equal((await host.exec(`test -e ${v2}`)).code, 1, "nothing was copied");
  assert.match(await onHost(`cat ${OWNER_RECORD}`), /^test-owner-a\/test /);
  assert.equal(await hostUrn(second), undefined, "the refused stack recorded no host");
});

test("with takeOver the second stack manages the machine; the first says so at refresh and refuses its next up", async () => {
  second.setProgram(program(v2, "test-owner-a/test"));
  await second.up();
  assert.equal(await onHost("readlink /run/current-system"), v2);
  assert.equal(await onHost(`cat ${OWNER_RECORD}`), `test-owner-b/test ${await hostUrn(second)}`);
  assert.match(second.lastOutput(), /ownership: took this machine over from stack test-owner-a\/test/);

  await first.refresh();
  assert.match(first.lastOutput(), /web: this machine is now managed by stack test-owner-b\/test \(resource [^)]+\), which took it over/);
  // The default output (no --diff), as a user runs `pulumi preview`.
  let shown = "";
  const preview = await first.stack.preview({ onOutput: (t) => (shown += t), color: "never" });
  assert.equal(preview.changeSummary["update"], 1, shown);
  assert.match(shown, /web: taken over by stack test-owner-b\/test .*: the update refuses and changes nothing on the machine; to take it back set takeOver: "test-owner-b\/test"/);
  await assert.rejects(first.up(), /this machine is managed by stack test-owner-b\/test/);
  assert.equal(await onHost("readlink /run/current-system"), v2, "the first stack changed nothing");
  assert.match(await onHost(`cat ${OWNER_RECORD}`), /^test-owner-b\/test /);
});
