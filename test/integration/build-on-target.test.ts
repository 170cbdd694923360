// build.on = "target": the derivations are copied and realised on the target; the deployer
// never builds (or stores) the system itself.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execa } from "execa";
import { switchHost } from "../../provider/host/operations";
import { evalToplevel } from "../../provider/nix";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem, SYSTEM_NIX } from "../harness/systems";

let host: TestHost | undefined;
after(async () => host?.stop());

test("a system built on the target runs there and was never built here", async () => {
  host = await startHost({ name: "builder", state: "nixos", system: await buildTestSystem({ label: "bt-base" }) });
  const label = `built-on-target-${randomBytes(4).toString("hex")}`;
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { expression: { file: SYSTEM_NIX, args: { label } } },
    build: { on: "target" },
  });
  const toplevel = await evalToplevel(spec.system);
  const lines: string[] = [];
  const facts = await switchHost(spec, toplevel, undefined, (l) => lines.push(l));
  assert.equal(facts.currentSystem, toplevel);
  assert.equal((await host.run("cat /etc/nixos-test-release")).trim(), label);
  assert.ok(lines.some((l) => /nix-store --realise/.test(l)), lines.join("\n"));
  const local = await execa("nix-store", ["--check-validity", toplevel], { reject: false });
  assert.notEqual(local.exitCode, 0, "the toplevel is not in the deployer's store");
});
