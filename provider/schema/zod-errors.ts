import type { z } from "zod";
import { InputError, type FieldIssue } from "../errors";
import { didYouMean } from "../util/did-you-mean";

type Path = readonly PropertyKey[];

/** "connection.proxy.port", "switch.healthChecks[0]". */
export function formatPath(path: Path): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".").replace(/\.\[/g, "[");
}

/** Turns zod issues into field-path messages ("connection.port: ..."). */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

/**
 * Every problem of `value` against `schema`: zod's own issues, except that unknown fields
 * are reported one by one with the closest known name ("did you mean ..."), and a union
 * whose only fault is such a field does not also say "give exactly one of ...".
 */
export function schemaIssues(schema: z.ZodType, value: unknown, base: Path = []): FieldIssue[] {
  const unknown = unknownFieldIssues(schema, value, [...base]);
  const result = schema.safeParse(value);
  if (result.success) return unknown.map(({ path, message }) => ({ path: formatPath(path), message }));
  const zodIssues = result.error.issues
    .filter((i) => i.code !== "unrecognized_keys")
    .filter((i) => !(i.code === "invalid_union" && unknown.some((u) => startsWith(u.path, [...base, ...i.path]))))
    .flatMap((i): Issue[] => unionBranchIssues(i as Issue) ?? [i as Issue])
    .map((i) => ({ path: formatPath([...base, ...i.path]), message: i.message }));
  return [...unknown.map(({ path, message }) => ({ path: formatPath(path), message })), ...zodIssues];
}

/** Parses or throws an InputError naming every bad field. */
export function parseInputs<T extends z.ZodType>(resource: string, schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InputError(resource, schemaIssues(schema, value));
  return result.data;
}

type Issue = { code: string; path: PropertyKey[]; message: string; errors?: Issue[][] };

/**
 * A union whose value has the keys of one branch, faulty only inside a field (e.g.
 * system.flake with a bad specialArgs): that branch's own issues, not "give exactly one of".
 */
function unionBranchIssues(issue: Issue): Issue[] | undefined {
  if (issue.code !== "invalid_union" || !issue.errors) return undefined;
  const inside = issue.errors.filter((errs) => errs.length > 0 && errs.every((e) => e.path.length > 0 && e.code !== "unrecognized_keys" && !(e.code === "invalid_type" && e.path.length === 1 && /received undefined/.test(e.message))));
  if (inside.length !== 1) return undefined;
  return inside[0]!.map((e) => ({ ...e, path: [...issue.path, ...e.path] }));
}

function startsWith(path: Path, prefix: Path): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => p === path[i]);
}

type Def = { type: string; [key: string]: unknown };
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** Strips optional/default/nullable/pipe wrappers down to the schema that checks the value. */
function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (["optional", "default", "prefault", "nullable", "readonly", "catch", "nonoptional"].includes(def.type)) current = def["innerType"] as z.ZodType;
    else if (def.type === "pipe") current = def["in"] as z.ZodType;
    else return current;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function unknownFieldIssues(schema: z.ZodType, value: unknown, path: PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  const s = unwrap(schema);
  const def = defOf(s);
  if (def.type === "object" && isPlainObject(value)) {
    const shape = def["shape"] as Record<string, z.ZodType>;
    // An object of another "type" (a disko node of a kind not accepted here): its type's
    // message says so; its fields are not this schema's to judge.
    if (!acceptsType(shape, value)) return [];
    const known = Object.keys(shape);
    const issues: { path: PropertyKey[]; message: string }[] = [];
    for (const [key, v] of Object.entries(value)) {
      if (shape[key]) issues.push(...unknownFieldIssues(shape[key], v, [...path, key]));
      else if (def["catchall"] === undefined || defOf(def["catchall"]).type === "never") {
        issues.push({ path: [...path, key], message: unknownFieldMessage(key, known) });
      }
    }
    return issues;
  }
  if (def.type === "union" && isPlainObject(value)) {
    const options = (def["options"] as z.ZodType[]).map(unwrap).filter((o) => defOf(o).type === "object" && acceptsType(defOf(o)["shape"] as Record<string, z.ZodType>, value));
    // None of the union's types: the union's own message names them.
    if (options.length === 0) return [];
    const keysOf = (o: z.ZodType) => Object.keys(defOf(o)["shape"] as object);
    const matching = options.filter((o) => Object.keys(value).some((k) => keysOf(o).includes(k)));
    if (matching.length === 1) return unknownFieldIssues(matching[0]!, value, path);
    if (matching.length === 0) {
      const known = [...new Set(options.flatMap(keysOf))];
      return Object.keys(value).map((key) => ({ path: [...path, key], message: unknownFieldMessage(key, known) }));
    }
    return [];
  }
  if (def.type === "record" && isPlainObject(value)) {
    return Object.entries(value).flatMap(([k, v]) => unknownFieldIssues(def["valueType"] as z.ZodType, v, [...path, k]));
  }
  if (def.type === "array" && Array.isArray(value)) {
    return value.flatMap((v, i) => unknownFieldIssues(def["element"] as z.ZodType, v, [...path, i]));
  }
  return [];
}

/** False when the schema's `type` is a literal and the value names another type. */
function acceptsType(shape: Record<string, z.ZodType>, value: Record<string, unknown>): boolean {
  if (!shape["type"] || typeof value["type"] !== "string") return true;
  const def = defOf(unwrap(shape["type"]));
  return def.type !== "literal" || (def["values"] as unknown[]).includes(value["type"]);
}

export function unknownFieldMessage(key: string, known: readonly string[]): string {
  const guess = didYouMean(key, known);
  return guess
    ? `unknown field "${key}"; did you mean "${guess}"?`
    : `unknown field "${key}"; the fields here are ${known.map((k) => `"${k}"`).join(", ")}`;
}
