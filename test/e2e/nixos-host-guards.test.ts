// What a user meets around an existing host, with the real Pulumi CLI against a test host:
// adopting a host already on the wanted system switches nothing; a wrong connection.hostKey
// fails the update at once with both fingerprints and runs nothing; `protect` turns a replace
// into a refused up that touches nothing; destroy says the machine was left running.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { NixosHost } from "nixos-pulumi";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { generateKeyPair } from "../harness/keys";
import { fingerprint } from "../../provider/ssh";

let host: TestHost;
let v1: string;
let stack: TestStack;

interface Options {
  hostKey?: string;
  triggers?: Record<string, string>;
  protect?: boolean;
}

function program(o: Options = {}) {
  return async () => {
    const h = new NixosHost(
      "web",
      {
        connection: { host: host.address, port: host.port, privateKey: host.clientPrivateKey, hostKey: o.hostKey ?? host.hostPublicKey },
        system: { storePath: v1 },
        reinstallTriggers: o.triggers ?? {},
      },
      { protect: o.protect ?? false },
    );
    return { generation: h.generation, bootedSystem: h.bootedSystem, hostKey: h.hostKey };
  };
}

/** The default output of `pulumi preview` (no --diff), as a user sees it. */
async function previewText(): Promise<{ text: string; result?: Awaited<ReturnType<TestStack["stack"]["preview"]>>; error?: Error }> {
  let text = "";
  try {
    const result = await stack.stack.preview({ onOutput: (t) => (text += t), color: "never" });
    return { text, result };
  } catch (error) {
    return { text, error: error as Error };
  }
}

const generation = async () => Number((await host.run("readlink /nix/var/nix/profiles/system")).trim().replace(/^system-(\d+)-link$/, "$1"));

before(async () => {
  v1 = await buildTestSystem({ label: "guards-v1" });
  host = await startHost({ state: "nixos", system: v1, name: "web" });
  stack = await createTestStack("guards", program());
});

after(async () => {
  stack?.setProgram(program());
  await stack?.destroy().catch(() => undefined);
  await stack?.remove();
  await host?.stop();
});

test("adopting a host that already runs the declared system records it without switching", async () => {
  const before = await generation();
  const up = await stack.up();
  assert.equal(await generation(), before, "no new generation");
  assert.match(stack.output(), /web \[[0-9.]+s\] adopt: already running \/nix\/store\/\S+-nixos-system-test-guards-v1; nothing to switch/);
  assert.doesNotMatch(stack.output(), /activate:/);
  assert.notEqual(up.outputs["bootedSystem"]?.value, "/run/booted-system");
});

test("a wrong connection.hostKey fails the update at once with both fingerprints; nothing runs and the state keeps the old key", async () => {
  const other = await generateKeyPair("guards-wrong-host-key");
  const wrong = other.publicKey.split(" ").slice(0, 2).join(" ");
  stack.setProgram(program({ hostKey: wrong }));
  const preview = await previewText();
  assert.match(preview.text, /web: update: connection changed; nothing runs on the machine \(a changed address or host key is verified with an SSH handshake\)/);
  const started = Date.now();
  await assert.rejects(stack.up(), (err: Error) => {
    assert.match(err.message, new RegExp(`host key mismatch: expected ${fingerprint(wrong).replace(/[+/]/g, "\\$&")} \\(ssh-ed25519\\), the server presented ${fingerprint(host.hostPublicKey).replace(/[+/]/g, "\\$&")}`));
    return true;
  });
  assert.ok(Date.now() - started < 30_000);
  const web = (await stack.resources()).find((r) => r.type.endsWith("NixosHost"));
  assert.equal(web?.outputs?.["hostKey"], host.hostPublicKey);
  stack.setProgram(program());
  await stack.up();
});

test("protect: a replace previews, and the up is refused before anything is deleted or run", async () => {
  stack.setProgram(program({ triggers: { vm: "vm-1" }, protect: true }));
  await stack.up(); // the trigger's baseline
  const before = await generation();
  stack.setProgram(program({ triggers: { vm: "vm-2" }, protect: true }));
  const preview = await previewText();
  assert.match(preview.text, /web: re-adopt \(reinstallTriggers\.vm vm-1 → vm-2\)/);
  assert.match(preview.text + String(preview.error?.message), /protect/);
  await assert.rejects(stack.up(), /unable to replace resource .*web.*as it is currently marked for protection|protect/);
  assert.equal(await generation(), before);
  const web = (await stack.resources()).find((r) => r.type.endsWith("NixosHost"));
  assert.deepEqual(web?.outputs?.["reinstallTriggers"], { vm: "vm-1" });
  stack.setProgram(program({ triggers: { vm: "vm-1" }, protect: false }));
  await stack.up();
});

test("destroy forgets the host and says the machine was left running", async () => {
  stack.setProgram(program());
  await stack.destroy();
  assert.match(stack.output(), /web: forgotten; the machine \S+ was left running \/nix\/store\/\S+-nixos-system-test-guards-v1 \(nothing was wiped or stopped\)/);
  assert.equal((await host.run("readlink /run/current-system")).trim(), v1);
});
