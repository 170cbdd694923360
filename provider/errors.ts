/**
 * Errors a user reads in `pulumi up` output. Each names where it happened (the resource or
 * host, the step), what was seen, and what to do about it.
 */
export class NixosPulumiError extends Error {
  constructor(
    /** The sentence itself, before the step, output and hint are added around it. */
    readonly summary: string,
    readonly details: { step: string; host?: string; hint?: string; output?: string } = { step: "unknown" },
  ) {
    super(NixosPulumiError.format(summary, details));
    this.name = new.target.name;
  }

  private static format(message: string, d: { step: string; host?: string; hint?: string; output?: string }): string {
    const where = d.host ? `${d.host}: ${d.step}` : d.step;
    let text = `[${where}] ${message}`;
    if (d.output && d.output.trim()) text += `\n--- output ---\n${d.output.trimEnd()}`;
    if (d.hint) text += `\nfix: ${d.hint}`;
    return text;
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
