/**
 * Errors a user reads in `pulumi up` output. Each names where it happened (the resource or
 * host, the step), what was seen, and what to do about it.
 *
 * Code that decides on a failure tests its class, never its text or step:
 * - ConnectFailedError: a dial gave up (`failure` says why; `cause` is ssh2's or Node's error).
 * - HostKeyMismatchError (ssh/host-key.ts): the server presented another key; never retried.
 * - ConnectionLostError: an open session dropped under a command.
 * - DeployLockLostError: the deploy lock is no longer ours; nothing more may change the machine.
 * - ActivationFailedError: the activation's verdict was a failure (`verdict` holds it).
 * The message users read is the same whatever the class.
 */
export class NixosPulumiError extends Error {
  constructor(
    /** The sentence itself, before the step, output and hint are added around it. */
    readonly summary: string,
    readonly details: ErrorDetails = { step: "unknown" },
    options?: { cause?: unknown },
  ) {
    super(NixosPulumiError.format(summary, details), options);
    this.name = new.target.name;
  }

  private static format(message: string, d: ErrorDetails): string {
    const where = d.host ? `${d.host}: ${d.step}` : d.step;
    let text = `[${where}] ${message}`;
    if (d.output && d.output.trim()) text += `\n--- output ---\n${d.output.trimEnd()}`;
    if (d.hint) text += `\nfix: ${d.hint}`;
    return text;
  }
}

export type ErrorDetails = { step: string; host?: string; hint?: string; output?: string };

/**
 * Why a dial failed, as the dial loop decides on it: `refused` (nothing listens: retried a
 * few times), `silent` (TCP accepted, no SSH greeting in time), `transient` (reset, lost
 * before the handshake: retried), `login-refused` (the server refused the credentials),
 * `final` (anything else: not retried).
 */
export type DialFailure = "refused" | "silent" | "transient" | "login-refused" | "final";

/** A dial that gave up: the target (or its jump host) could not be logged into. */
export class ConnectFailedError extends NixosPulumiError {
  constructor(
    summary: string,
    details: ErrorDetails,
    readonly failure: DialFailure,
    cause?: unknown,
  ) {
    super(summary, details, cause === undefined ? undefined : { cause });
  }
}

/** An open session dropped: a command could not start, or ended without an exit status. */
export class ConnectionLostError extends NixosPulumiError {}

/** The deploy lock is no longer held: another deployer may have the machine. */
export class DeployLockLostError extends NixosPulumiError {}

/** What activate.sh recorded for an activation that did not succeed. */
export interface ActivationVerdict {
  /** failed | rolled-back | rollback-failed | profile-failed | not-activated */
  result: string;
  /** health-check | init-interface | not-confirmed | "" (switch-to-configuration's status decides) */
  reason: string;
  /** switch-to-configuration's (or the health check's) exit status. */
  status: string;
  /** The system the host ran before. */
  previous: string;
}

/** The activation ran and its verdict is a failure (rolled back or not, as `verdict.result` says). */
export class ActivationFailedError extends NixosPulumiError {
  constructor(
    summary: string,
    details: ErrorDetails,
    readonly verdict: ActivationVerdict,
  ) {
    super(summary, details);
  }
}

/** One bad input field: its path ("connection.port") and what to do about it. */
export type FieldIssue = { path: string; message: string };

/** Bad input: raised by `check`, before anything touches a machine. */
export class InputError extends NixosPulumiError {
  constructor(
    readonly resource: string,
    readonly issues: FieldIssue[],
  ) {
    super(
      `invalid ${resource} inputs:\n` + issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}`).join("\n"),
      { step: "check" },
    );
  }
}

/**
 * What `check` hands the engine instead of throwing: one failure per bad field, which
 * Pulumi prints once, one line each, without a stack trace. A thrown error would be
 * printed three times (the provider's stderr, the gRPC error, the engine's summary).
 */
export function checkFailures(err: unknown): { property: string; reason: string }[] {
  if (err instanceof InputError) {
    return err.issues.map((i) => ({ property: "", reason: `${i.path || "(inputs)"}: ${i.message}` }));
  }
  if (err instanceof NixosPulumiError) {
    const d = err.details;
    let reason = `${d.step}: ${err.summary.split("\n")[0]}`;
    if (d.output && d.output.trim()) reason += `\n${d.output.trimEnd()}`;
    if (d.hint) reason += `\nfix: ${d.hint}`;
    return [{ property: "", reason }];
  }
  throw err;
}
