/**
 * Errors a user reads in `pulumi up` output. Each names where it happened (the resource or
 * host, the step), what was seen, and what to do about it.
 */
export class NixosPulumiError extends Error {
  constructor(
    message: string,
    readonly details: { step: string; host?: string; hint?: string; output?: string } = { step: "unknown" },
  ) {
    super(NixosPulumiError.format(message, details));
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

/** Bad input: raised by `check`, before anything touches a machine. */
export class InputError extends NixosPulumiError {
  constructor(
    readonly resource: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(
      `invalid ${resource} inputs:\n` + issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}`).join("\n"),
      { step: "check" },
    );
  }
}
