// An error of the copy's child process crosses to the parent as JSON (child.ts, in-child.ts):
// the classes code branches on are rebuilt on the parent's side with what decides about them
// (the dial failure, the cause's ssh2 level and system code, the host keys of a mismatch).
import { ConnectFailedError, ConnectionLostError, NixosPulumiError, type DialFailure, type ErrorDetails } from "../errors";
import { HostKeyMismatchError } from "../ssh/host-key";

/** What the cause carried that code decides on: its message, ssh2's `level`, Node's `code`. */
type WireCause = { message: string; level?: string; code?: string };

export type WireError =
  | { kind: "plain"; message: string }
  | { kind: "nixos-pulumi"; summary: string; details: ErrorDetails; cause?: WireCause }
  | { kind: "connect-failed"; summary: string; details: ErrorDetails; failure: DialFailure; cause?: WireCause }
  | { kind: "connection-lost"; summary: string; details: ErrorDetails; cause?: WireCause }
  | { kind: "host-key-mismatch"; host: string; expected: string; seen: string };

function causeToWire(cause: unknown): WireCause | undefined {
  if (!(cause instanceof Error)) return undefined;
  const { level, code } = cause as Error & { level?: unknown; code?: unknown };
  return {
    message: cause.message,
    ...(typeof level === "string" ? { level } : {}),
    ...(typeof code === "string" ? { code } : {}),
  };
}

function causeFromWire(wire: WireCause | undefined): { cause?: Error } {
  if (!wire) return {};
  return { cause: Object.assign(new Error(wire.message), wire.level ? { level: wire.level } : {}, wire.code ? { code: wire.code } : {}) };
}

export function errorToWire(err: unknown): WireError {
  if (err instanceof HostKeyMismatchError) return { kind: "host-key-mismatch", host: err.details.host ?? "", expected: err.expected, seen: err.seen };
  if (!(err instanceof NixosPulumiError)) return { kind: "plain", message: err instanceof Error ? err.message : String(err) };
  const cause = causeToWire(err.cause);
  const common = { summary: err.summary, details: err.details, ...(cause ? { cause } : {}) };
  if (err instanceof ConnectFailedError) return { kind: "connect-failed", failure: err.failure, ...common };
  if (err instanceof ConnectionLostError) return { kind: "connection-lost", ...common };
  return { kind: "nixos-pulumi", ...common };
}

/** The error again, of its class; one the child could not explain gets `fallback`'s step and host. */
export function errorFromWire(wire: WireError, fallback: ErrorDetails): NixosPulumiError {
  switch (wire.kind) {
    case "host-key-mismatch":
      return new HostKeyMismatchError(wire.host, wire.expected, wire.seen);
    case "connect-failed":
      return new ConnectFailedError(wire.summary, wire.details, wire.failure, causeFromWire(wire.cause).cause);
    case "connection-lost":
      return new ConnectionLostError(wire.summary, wire.details, causeFromWire(wire.cause));
    case "nixos-pulumi":
      return new NixosPulumiError(wire.summary, wire.details, causeFromWire(wire.cause));
    case "plain":
      return new NixosPulumiError(wire.message, fallback);
  }
}
