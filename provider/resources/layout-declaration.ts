/**
 * Whether a layout declaration renders the same on any day: devices declared inline, or a
 * disko script given by store path. A diskoFile or a flake's disko script renders what the
 * file or flake holds now, which may differ from what it held when the state was written.
 */
export function rendersFromStateAlone(declared: unknown): boolean {
  if (typeof declared !== "object" || declared === null) return false;
  const d = declared as Record<string, unknown>;
  if (d["diskoFile"] !== undefined) return false;
  const script = d["diskoScript"] as Record<string, unknown> | undefined;
  return script === undefined || typeof script["storePath"] === "string";
}
