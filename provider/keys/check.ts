// What `check` records of the keys: each entry with its defaults and the digest of its
// content (a file's is read now, so a changed file previews as a change).
import { containsUnknown } from "../util/unknown";
import { digestOf, keyBytes } from "./content";
import { keySchema } from "../schema/keys";

/** Entries still unknown (preview) are kept as they are. Assumes the keys passed validation. */
export function checkedKeys(keys: unknown): unknown {
  if (keys === undefined || containsUnknown(keys) && (typeof keys !== "object" || keys === null)) return keys;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(keys as Record<string, unknown>)) {
    if (containsUnknown(value)) {
      out[name] = value;
      continue;
    }
    const key = keySchema.parse(value);
    const { digest: _given, ...rest } = key;
    out[name] = { ...rest, digest: digestOf(keyBytes(name, key)) };
  }
  return out;
}
