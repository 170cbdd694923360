/** A JSON-like value as a Nix expression (strings escaped, `${` kept literal). */
export function toNix(value: unknown, indent = ""): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return JSON.stringify(value).replace(/\$\{/g, "\\${");
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const inner = indent + "  ";
  if (Array.isArray(value)) return value.length === 0 ? "[ ]" : `[\n${value.map((v) => inner + toNix(v, inner)).join("\n")}\n${indent}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return "{ }";
  return `{\n${entries.map(([k, v]) => `${inner}${nixKey(k)} = ${toNix(v, inner)};`).join("\n")}\n${indent}}`;
}

function nixKey(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_'-]*$/.test(name) ? name : JSON.stringify(name).replace(/\$\{/g, "\\${");
}
