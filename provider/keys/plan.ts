// What a run does with the keys: which to write, which to remove, and why, by name only.
import { canonicalJson } from "../util/canonical-json";
import { containsUnknown } from "../util/unknown";
import { keyPath, normalMode, type KeySpec, type KeysSpec } from "../schema/keys";

/** What refresh found on the machine for a key (recorded as the `keyDrift` output). */
export type KeyDrift = "missing" | "changed";

export interface KeyToWrite {
  name: string;
  key: KeySpec;
  /** Why, for progress and preview lines; never the content. */
  reason: string;
}

export interface KeyToRemove {
  name: string;
  path: string;
}

export interface KeyPlan {
  write: KeyToWrite[];
  remove: KeyToRemove[];
  /** The recorded keys differ from the declared ones (the state must be updated), also when nothing is written. */
  changed: boolean;
}

type Props = Record<string, unknown>;

const WHAT_IS_ON_THE_MACHINE = ["destDir", "owner", "group", "mode"] as const;

/**
 * Recorded keys (the old outputs, with refresh's drift) against declared ones. A key is
 * written when it is new, its content (digest) or file attributes changed, or refresh found
 * it missing or changed on the machine; removed when it left the program or moved.
 */
export function planKeys(recorded: unknown, declared: unknown, drift: unknown): KeyPlan {
  const before = (isRecord(recorded) ? recorded : {}) as Record<string, Props>;
  const seen = (isRecord(drift) ? drift : {}) as Record<string, KeyDrift>;
  const plan: KeyPlan = { write: [], remove: [], changed: false };
  if (declared === undefined || declared === null) declared = {};
  if (!isRecord(declared)) {
    // Unknown during preview: the whole map may change.
    plan.changed = true;
    return plan;
  }
  const after = declared as Record<string, unknown>;
  for (const [name, value] of Object.entries(after)) {
    const old = before[name];
    if (containsUnknown(value)) {
      plan.changed = true;
      plan.write.push({ name, key: value as KeySpec, reason: "its value is known only during the update" });
      continue;
    }
    const key = value as KeySpec;
    const reason = whyWrite(old, key, seen[name]);
    if (reason) plan.write.push({ name, key, reason });
    if (old && isRecord(old) && typeof old["destDir"] === "string" && keyPath(name, old as KeySpec) !== keyPath(name, key)) {
      plan.remove.push({ name, path: keyPath(name, old as KeySpec) });
    }
    if (reason || !same(old, key)) plan.changed = true;
  }
  for (const [name, old] of Object.entries(before)) {
    if (name in after) continue;
    plan.changed = true;
    if (isRecord(old) && typeof old["destDir"] === "string") plan.remove.push({ name, path: keyPath(name, old as KeySpec) });
  }
  if (Object.keys(seen).length > 0) plan.changed = true;
  return plan;
}

/** Every declared key, for a machine that has none of them yet (an install, an adoption). */
export function planAllKeys(declared: KeysSpec, reason: string): KeyPlan {
  const write = Object.entries(declared).map(([name, key]) => ({ name, key, reason }));
  return { write, remove: [], changed: write.length > 0 };
}

function whyWrite(old: Props | undefined, key: KeySpec, drift: KeyDrift | undefined): string | undefined {
  if (!old || !isRecord(old)) return "new";
  if (drift === "missing") return "missing on the machine (a reboot empties /run/keys), written again";
  if (drift === "changed") return "changed on the machine (content, owner, group or mode), written again";
  const changes: string[] = [];
  if (old["digest"] !== key.digest) changes.push("content changed");
  for (const field of WHAT_IS_ON_THE_MACHINE) {
    const was = field === "mode" ? normalMode(String(old[field] ?? "")) : old[field];
    const now = field === "mode" ? normalMode(key[field]) : key[field];
    if (was !== now) changes.push(`${field} ${String(old[field] ?? "")} → ${key[field]}`);
  }
  return changes.length > 0 ? changes.join(", ") : undefined;
}

/** The preview's lines for the keys: names and attributes, never content. */
export function describeKeyPlan(plan: KeyPlan, systemChanges: boolean): string[] {
  const lines = plan.write.map(({ name, key, reason }) =>
    `key ${name}: ${reason === "new" ? "new, " : `${reason}; `}uploaded to ${isRecord(key) && typeof key.destDir === "string" ? keyPath(name, key) : "its destDir"}${uploadWhen(key, systemChanges)}`,
  );
  lines.push(...plan.remove.map(({ name, path }) => `key ${name}: removed from ${path}`));
  if (!systemChanges && (plan.write.length > 0 || plan.remove.length > 0)) lines.push("keys only: the system is not activated again");
  return lines;
}

function uploadWhen(key: KeySpec, systemChanges: boolean): string {
  if (!systemChanges || !isRecord(key)) return "";
  return key.uploadAt === "post-activation" ? " after the activation" : " before the activation";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}
