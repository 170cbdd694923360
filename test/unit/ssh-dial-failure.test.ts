// What the dial loop decides about a failed attempt comes from ssh2's `level` and Node's
// `code` on the error, never from its text: real failures produced on loopback (a closed
// port, a silent listener, a server that closes before or after its banner, one that resets,
// one that is not SSH), each classified, retried or not, and named in the ConnectFailedError
// the dial ends with, whose cause is the last attempt's error. The codes loopback cannot
// produce (no route, a DNS failure) are checked on errors of the same shape.
import { test } from "node:test";
import type { Socket } from "node:net";
import * as assert from "node:assert/strict";
import { connect } from "../../provider/ssh";
import { classifyDialError, ClosedBeforeHandshake } from "../../provider/ssh/dial-failure";
import { ConnectFailedError, NixosPulumiError } from "../../provider/errors";
import { connectionSchema } from "../../provider/schema/connection";
import { closedPort, loopbackServer } from "../harness/loopback";

type Cause = Error & { level?: string; code?: string };

/** Dials 127.0.0.1:port and returns the ConnectFailedError the dial ends with. */
async function dialFailure(port: number, limits: { perDialTimeout?: number; dialErrorLimit?: number } = {}): Promise<ConnectFailedError> {
  const connection = connectionSchema.parse({ host: "127.0.0.1", port, password: "not-used", perDialTimeout: 5, ...limits });
  const err = await connect(connection, { retryIntervalMs: 50 }).then(
    (session) => {
      session.close();
      throw new Error("the dial succeeded");
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConnectFailedError, `a ConnectFailedError, not ${String(err)}`);
  return err;
}

const causeOf = (err: ConnectFailedError) => err.cause as Cause;

/** Dials a loopback server that does `onConnection` with each connection: the error the dial ends with, and how many dials it took. */
async function failureAgainst(onConnection: (socket: Socket) => void, limits: Parameters<typeof dialFailure>[1]): Promise<{ err: ConnectFailedError; dials: number }> {
  const server = await loopbackServer(onConnection);
  try {
    const err = await dialFailure(server.port, limits);
    return { err, dials: server.sockets.length };
  } finally {
    await server.close();
  }
}

test("a closed port: ssh2's client-socket error with ECONNREFUSED is 'refused', given up after three attempts", async () => {
  const err = await dialFailure(await closedPort(), { dialErrorLimit: 10 });
  assert.equal(err.failure, "refused");
  assert.equal(causeOf(err).level, "client-socket");
  assert.equal(causeOf(err).code, "ECONNREFUSED");
  assert.equal(classifyDialError(err.cause), "refused");
  assert.match(err.message, /3 attempts in/);
  assert.match(err.message, /fix: nothing accepts connections on 127\.0\.0\.1:\d+/);
});

test("a listener that never speaks: ssh2's client-timeout is 'silent', named as no SSH greeting", async () => {
  const { err, dials } = await failureAgainst(() => undefined, { perDialTimeout: 1 });
  assert.equal(err.failure, "silent");
  assert.equal(causeOf(err).level, "client-timeout");
  assert.equal(classifyDialError(err.cause), "silent");
  assert.equal(dials, 1, "the deadline allowed one dial");
  assert.match(err.message, /accepted TCP but sent no SSH greeting within 1 s/);
});

test("a server that sends its banner and closes: a ClosedBeforeHandshake, 'transient', dialled again", async () => {
  const { err, dials } = await failureAgainst((s) => s.resume().end("SSH-2.0-OpenSSH_9.6\r\n"), { dialErrorLimit: 3 });
  assert.equal(err.failure, "transient");
  assert.ok(err.cause instanceof ClosedBeforeHandshake, String(err.cause));
  assert.equal(classifyDialError(err.cause), "transient");
  assert.equal(dials, 3, "every attempt dialled");
  assert.match(err.message, /Connection lost before handshake: 127\.0\.0\.1:\d+ closed the connection/);
});

test("a server that closes without a word: ssh2's 'protocol' error is typed as closed by the server, and dialled again", async () => {
  const { err, dials } = await failureAgainst((s) => s.resume().end(), { dialErrorLimit: 3 });
  assert.equal(err.failure, "transient");
  assert.ok(err.cause instanceof ClosedBeforeHandshake, String(err.cause));
  // ssh2's own error, kept as the cause: its level alone ("protocol") would not tell it from a bad packet.
  assert.equal(((err.cause as Error).cause as Cause).level, "protocol");
  assert.equal(dials, 3, "every attempt dialled");
});

test("a server that resets the connection: Node's ECONNRESET (or EPIPE) is 'transient', dialled again", async () => {
  const { err, dials } = await failureAgainst((s) => s.resetAndDestroy(), { dialErrorLimit: 3 });
  assert.equal(err.failure, "transient");
  assert.equal(causeOf(err).level, "client-socket");
  assert.ok(["ECONNRESET", "EPIPE"].includes(causeOf(err).code ?? ""), String(causeOf(err).code));
  assert.equal(dials, 3, "every attempt dialled");
});

test("a server whose identification line is not SSH's: 'final', dialled once", async () => {
  const { err, dials } = await failureAgainst((s) => s.resume().write("SSH-garbage\r\n"), { dialErrorLimit: 5 });
  assert.equal(err.failure, "final");
  assert.equal(classifyDialError(err.cause), "final");
  assert.equal(dials, 1, "not dialled again");
  assert.match(err.message, /1 attempt in/);
});

test("codes loopback cannot produce are classified by the same rules", () => {
  const socketError = (code: string) => Object.assign(new Error(`connect ${code} 192.0.2.1:22`), { code, level: "client-socket" });
  assert.equal(classifyDialError(socketError("EHOSTUNREACH")), "refused");
  assert.equal(classifyDialError(socketError("ENETUNREACH")), "refused");
  assert.equal(classifyDialError(socketError("ETIMEDOUT")), "transient");
  assert.equal(classifyDialError(socketError("EAI_AGAIN")), "transient");
  assert.equal(classifyDialError(socketError("EPIPE")), "transient");
  assert.equal(classifyDialError(socketError("ENOTFOUND")), "final", "a name that does not resolve is not retried");
  assert.equal(classifyDialError(Object.assign(new Error("All configured authentication methods failed"), { level: "client-authentication" })), "login-refused");
  assert.equal(classifyDialError(Object.assign(new Error("Failed to connect to agent"), { level: "agent" })), "final");
  // The text alone decides nothing: a message that looks retryable, without level or code, is final.
  assert.equal(classifyDialError(new Error("connect ECONNREFUSED 127.0.0.1:22")), "final");
  assert.equal(classifyDialError(new NixosPulumiError("explained already", { step: "connect" })), "final");
  assert.equal(classifyDialError("not an error"), "final");
});
