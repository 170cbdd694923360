// Why one dial attempt failed, decided from what ssh2 and Node put on the error, never from
// its text. ssh2 (lib/client.js) sets `level`: "client-socket" on the socket's own errors
// (which carry Node's system `code`), "client-timeout" when readyTimeout passes before the
// session is ready, "client-authentication" when every method was refused, "protocol" and
// "handshake" for what the server sent. The cases ssh2 leaves ambiguous are typed where
// they happen (connect.ts, dialOnce): a connection closed by the server before the handshake, and
// a jump host that could not open the forwarded connection.
import { ConnectFailedError, NixosPulumiError, type DialFailure } from "../errors";

/** The server closed the connection before the handshake ended (an sshd going down, a port forward with nothing behind it). */
export class ClosedBeforeHandshake extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ClosedBeforeHandshake";
  }
}

/** The jump host refused to open the forwarded connection to the target. */
export class JumpForwardRefused extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = "JumpForwardRefused";
  }
}

/** Nothing accepts connections there (or no route to it): a closed port does not open by waiting. */
const REFUSED_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH"]);
/** The link failed under a connection, or the name did not resolve for now: the next dial may get through. */
const TRANSIENT_CODES = new Set(["ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "EPIPE"]);

/** What the dial loop does about one failed attempt (see DialFailure). */
export function classifyDialError(err: unknown): DialFailure {
  if (err instanceof ConnectFailedError) return err.failure;
  // A host key mismatch, or anything else we already explained: never dialled again.
  if (err instanceof NixosPulumiError || err instanceof JumpForwardRefused) return "final";
  if (err instanceof ClosedBeforeHandshake) return "transient";
  if (!(err instanceof Error)) return "final";
  const { level, code } = err as Error & { level?: unknown; code?: unknown };
  if (level === "client-timeout") return "silent";
  if (level === "client-authentication") return "login-refused";
  if (typeof code === "string" && (level === "client-socket" || level === undefined)) {
    if (REFUSED_CODES.has(code)) return "refused";
    if (TRANSIENT_CODES.has(code)) return "transient";
  }
  return "final";
}
