// Registering a NixosHost or DiskLayout skips the stack traces Pulumi records on each
// property's promises (bench/fleet.ts: most of a no-op fleet preview's overhead), and only
// for the registration itself.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { skipPromiseStackTraces } from "../../provider/resources/promise-stack-traces";
import { DiskLayout, NixosHost } from "../../provider";

const registered: pulumi.runtime.MockResourceArgs[] = [];
pulumi.runtime.setMocks({
  newResource: (args) => {
    registered.push(args);
    return { id: `${args.name}-id`, state: args.inputs };
  },
  call: () => ({}),
});

test("traces are off while a resource registers and back to the process's limit after", () => {
  Error.stackTraceLimit = 37;
  const restore = skipPromiseStackTraces();
  assert.equal(Error.stackTraceLimit, 0);
  assert.equal(new Error("x").stack, "Error: x", "no frames are captured or mapped");
  restore();
  assert.equal(Error.stackTraceLimit, 37);
  assert.match(new Error("y").stack!, /\n\s+at /, "later errors have their frames again");
});

test("with PULUMI_DEBUG_PROMISE_LEAKS set, the traces Pulumi prints for leaked promises are kept", () => {
  process.env["PULUMI_DEBUG_PROMISE_LEAKS"] = "1";
  try {
    Error.stackTraceLimit = 25;
    const restore = skipPromiseStackTraces();
    assert.equal(Error.stackTraceLimit, 25);
    restore();
  } finally {
    delete process.env["PULUMI_DEBUG_PROMISE_LEAKS"];
  }
});

test("a NixosHost and a DiskLayout register with their inputs and leave the limit as it was", async () => {
  Error.stackTraceLimit = 42;
  const layout = new DiskLayout("disks", { disks: { main: { device: "/dev/vda", content: { type: "gpt", partitions: {} } } } } as never);
  assert.equal(Error.stackTraceLimit, 42);
  const host = new NixosHost("web1", {
    connection: { host: "127.0.0.1" },
    system: { storePath: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system" },
    diskLayout: layout,
  });
  assert.equal(Error.stackTraceLimit, 42);
  const urn = await new Promise((resolve) => host.urn.apply(resolve));
  assert.match(String(urn), /NixosHost::web1$/);
  const hostArgs = registered.find((r) => r.name === "web1");
  assert.deepEqual((hostArgs?.inputs as { connection?: unknown }).connection, { host: "127.0.0.1" });
  assert.ok(registered.some((r) => r.name === "disks"), "the layout registered too");
});
