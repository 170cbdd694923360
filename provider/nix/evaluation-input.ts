// Evaluation handed from the Pulumi program to the provider's `check`. The engine calls
// `check` one resource at a time, so evaluating there is serial; the program constructs all
// hosts before any registers, so evaluations it starts run together (bounded by the cores).
// `check` accepts a handed-in result only when it is for exactly the system it checks.
import { sha256Hex } from "../util/canonical-json";
import type { SystemSpec } from "../schema/nixos-host";
import { FLAKE_ATTR, STORE_PATH } from "../schema/system-patterns";
import { derivationOutput, evaluateSystem, rememberEvaluation, systemKey, type Evaluation } from "./toplevel";

/** The `evaluation` input of a NixosHost: for which system, and what evaluating it gave. */
export interface EvaluationInput {
  systemHash: string;
  toplevel: string;
  derivation?: string;
}

function systemHash(system: SystemSpec): string {
  return sha256Hex(systemKey(system));
}

/**
 * Whether a resolved `system` input has a shape worth evaluating. The program only decides
 * whether to evaluate; `check` validates with the schema (and takes a handed-in result only
 * for the system it validated), so this gate keeps zod, ~80 ms to load, out of the program
 * (bench/fleet.ts) while keeping malformed systems out of a batched evaluation.
 */
function evaluable(system: unknown): system is SystemSpec {
  if (!system || typeof system !== "object") return false;
  const entries = Object.entries(system).filter(([, v]) => v !== undefined);
  const { flake, specialArgs } = system as Record<string, unknown>;
  if (typeof flake === "string" && entries.length === (specialArgs === undefined ? 1 : 2)) {
    return FLAKE_ATTR.test(flake) && (specialArgs === undefined || (isPlainObject(specialArgs) && isJson(specialArgs)));
  }
  if (entries.length !== 1) return false;
  const [kind, value] = entries[0]!;
  if (kind === "storePath") return typeof value === "string" && STORE_PATH.test(value);
  if (kind !== "expression" || !value || typeof value !== "object") return false;
  const { file, attr, args, ...rest } = value as Record<string, unknown>;
  const scalar = (v: unknown) => ["string", "number", "boolean"].includes(typeof v);
  return (
    Object.values(rest).every((v) => v === undefined) &&
    typeof file === "string" && file !== "" &&
    (attr === undefined || (typeof attr === "string" && attr !== "")) &&
    (args === undefined || (typeof args === "object" && args !== null && Object.values(args).every(scalar)))
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isJson(value: unknown): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJson);
  return isPlainObject(value) && Object.values(value).every(isJson);
}

/**
 * Program side: evaluates a resolved `system` input. Never throws: on bad input or a failed
 * evaluation it gives undefined, and `check` evaluates itself and reports the error there,
 * naming the resource and field.
 */
export async function evaluateInProgram(rawSystem: unknown): Promise<EvaluationInput | undefined> {
  if (!evaluable(rawSystem)) return undefined;
  try {
    const { toplevel, derivation } = await evaluateSystem(rawSystem);
    return { systemHash: systemHash(rawSystem), toplevel, ...(derivation ? { derivation } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * Provider side: the handed-in evaluation if it is for `system` and consistent (the .drv
 * exists and builds that toplevel), remembered for `update`/`create`; else undefined.
 */
export function acceptEvaluation(system: SystemSpec, given: unknown): Evaluation | undefined {
  if (!given || typeof given !== "object") return undefined;
  const { systemHash: hash, toplevel, derivation } = given as Partial<EvaluationInput>;
  if (hash !== systemHash(system) || typeof toplevel !== "string") return undefined;
  if ("storePath" in system) {
    if (toplevel !== system.storePath || derivation !== undefined) return undefined;
  } else if (typeof derivation !== "string" || derivationOutput(derivation) !== toplevel) {
    return undefined;
  }
  const evaluation = { toplevel, derivation };
  rememberEvaluation(system, evaluation);
  return evaluation;
}

/** `create`/`update`: the toplevel and .drv `check` found, reused so building does not evaluate again. */
export function rememberChecked(system: SystemSpec, toplevel: unknown, derivation: unknown): void {
  if (typeof toplevel !== "string") return;
  if ("storePath" in system) return;
  if (typeof derivation === "string" && derivationOutput(derivation) === toplevel) rememberEvaluation(system, { toplevel, derivation });
}
