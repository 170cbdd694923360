// A large copy runs in a child process and its error crosses to the provider as JSON: the
// classes code branches on come out as they went in, with the same message, the dial's
// failure kind and the cause's ssh2 level and system code.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { errorFromWire, errorToWire } from "../../provider/copy/child-error";
import { ConnectFailedError, ConnectionLostError, NixosPulumiError } from "../../provider/errors";
import { connect, HostKeyMismatchError } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { closedPort } from "../harness/loopback";

const FALLBACK = { step: "copy", host: "127.0.0.1:22" };
/** Through JSON, as the child's IPC channel carries it. */
const crossed = (err: unknown) => errorFromWire(JSON.parse(JSON.stringify(errorToWire(err))), FALLBACK);

test("a dial the child gave up on is a ConnectFailedError in the parent, with its failure and its cause's level and code", async () => {
  const connection = connectionSchema.parse({ host: "127.0.0.1", port: await closedPort(), password: "not-used", dialErrorLimit: 1 });
  const original = await connect(connection).then(
    () => assert.fail("the dial succeeded"),
    (e: unknown) => e as ConnectFailedError,
  );
  const back = crossed(original);
  assert.ok(back instanceof ConnectFailedError);
  assert.equal(back.message, original.message);
  assert.equal(back.failure, "refused");
  const cause = back.cause as Error & { level?: string; code?: string };
  assert.equal(cause.level, "client-socket");
  assert.equal(cause.code, "ECONNREFUSED");
});

test("a host key mismatch, a lost connection and any other error keep their class and message", () => {
  const expected = `ssh-ed25519 ${Buffer.from("expected key").toString("base64")}`;
  const seen = `ssh-ed25519 ${Buffer.from("presented key").toString("base64")}`;
  const mismatch = new HostKeyMismatchError("10.0.0.1:22", expected, seen);
  const back = crossed(mismatch);
  assert.ok(back instanceof HostKeyMismatchError);
  assert.equal(back.message, mismatch.message);
  assert.equal(back.seen, seen);

  const lost = new ConnectionLostError("the SSH connection was lost during the copy of 3 paths", { step: "copy", host: "10.0.0.1:22", hint: "run again" });
  assert.ok(crossed(lost) instanceof ConnectionLostError);
  assert.equal(crossed(lost).message, lost.message);

  const other = new NixosPulumiError("asking the target which paths it lacks failed (exit 1)", { step: "copy", host: "10.0.0.1:22", output: "error: …" });
  assert.equal(crossed(other).constructor, NixosPulumiError);
  assert.equal(crossed(other).message, other.message);

  const plain = crossed(new Error("out of memory"));
  assert.equal(plain.message, "[127.0.0.1:22: copy] out of memory");
});
