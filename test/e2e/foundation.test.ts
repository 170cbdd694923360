// The toolchain and the provider's serialization under the real Pulumi engine.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { DiskLayout } from "nixos-pulumi";
import { createTestStack } from "../harness/pulumi";
import { tutorialLayout } from "../fixtures/layouts";


test("pulumi version is the pinned CLI, with the language host and launcher next to it", async () => {
  const { stdout } = await execa("pulumi", ["version"], { env: { PULUMI_SKIP_UPDATE_CHECK: "true" } });
  assert.equal(stdout.trim(), `v${process.env["PULUMI_VERSION"] ?? "3.259.0"}`);
  const { stdout: where } = await execa("sh", ["-c", "command -v pulumi"]);
  const dir = path.dirname(where.trim());
  for (const plugin of ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) {
    await execa("test", ["-x", path.join(dir, plugin)]);
  }
});

test("DiskLayout: up creates, preview is empty, a changed layout previews an update, destroy removes", async (t) => {
  const s = await createTestStack("foundation", async () => {
    const layout = new DiskLayout("main", tutorialLayout("/dev/vda", "ext4") as never);
    return { hash: layout.hash };
  });
  t.after(() => s.remove());

  const up = await s.up();
  assert.equal(up.summary.resourceChanges?.["create"], 2, s.output());
  assert.match(String(up.outputs["hash"]?.value), /^[0-9a-f]{64}$/);
  assert.doesNotMatch(s.output(), /from \$PATH/, "plugins must be found next to the CLI, not on $PATH");

  const again = await s.preview();
  assert.deepEqual(again.changeSummary, { same: 2 }, s.output());

  s.setProgram(async () => {
    const layout = new DiskLayout("main", tutorialLayout("/dev/vda", "xfs") as never);
    return { hash: layout.hash };
  });
  const changed = await s.preview();
  assert.equal(changed.changeSummary["update"], 1, s.output());
  assert.equal(changed.changeSummary["replace"], undefined);

  // The serialized provider in the state holds only `require`s by package name.
  const resources = await s.resources();
  const layout = resources.find((r) => r.type.endsWith("DiskLayout"));
  assert.ok(layout, "DiskLayout is in the state");
  const serialized = String(layout.inputs?.["__provider"] ?? "");
  assert.match(serialized, /require\(implementation\)/);
  assert.match(serialized, /"nixos-pulumi\/dist\/provider\/resources\/disk-layout-impl"/);
  for (const local of [path.resolve(__dirname, "../../.."), os.homedir(), s.workDir, os.tmpdir()]) {
    assert.ok(!serialized.includes(local), `serialized provider mentions ${local}`);
  }
  assert.ok(serialized.length < 4000, `serialized provider is ${serialized.length} characters`);

  const destroyed = await s.destroy();
  assert.equal(destroyed.summary.resourceChanges?.["delete"], 2, s.output());
  assert.equal((await s.resources()).length, 0);
});
