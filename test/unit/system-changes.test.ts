// What a switch changes inside the system, from two toplevels in the local store.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { systemChanges } from "../../provider/host/system-changes";
import { buildTestSystem } from "../harness/systems";

test("a new kernel says a reboot is needed; the same kernel does not", async () => {
  const [a, b, c] = await Promise.all([
    buildTestSystem({ label: "changes-a" }),
    buildTestSystem({ label: "changes-b" }),
    buildTestSystem({ label: "changes-a", kernelVersion: "6.6.0-test" }),
  ]);
  const sameKernel = await systemChanges(a, b);
  assert.ok(!sameKernel.some((l) => /reboot/.test(l)), sameKernel.join("\n"));
  assert.ok(sameKernel.some((l) => /^closure: [0-9.]+ → [0-9.]+ MiB/.test(l)), sameKernel.join("\n"));
  const newKernel = await systemChanges(a, c);
  assert.ok(newKernel.some((l) => /^kernel( and initrd)? changed: reboot needed/.test(l)), newKernel.join("\n"));
  assert.ok(newKernel.some((l) => /linux|kernel/.test(l) && /6\.1\.0-test → 6\.6\.0-test/.test(l)), newKernel.join("\n"));
});

test("a system not in the local store yet: the preview says how to see what changes", async () => {
  const a = await buildTestSystem({ label: "changes-a" });
  const lines = await systemChanges(a, "/nix/store/00000000000000000000000000000000-nixos-system-web-24.05");
  assert.deepEqual(lines, ["(what changes inside is shown once the new system is in this machine's Nix store, e.g. after `nix build`)"]);
});
