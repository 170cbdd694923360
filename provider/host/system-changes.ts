// What a switch changes inside the system, read from the local store without building
// anything (nvd-style): packages added, removed or changed version, the closure size, and
// whether the kernel or initrd changed (which `switch` does not load: a reboot is needed).
import { existsSync, readlinkSync } from "node:fs";
import * as path from "node:path";
import { closureOf, type ClosurePath } from "../nix";
import { MiB } from "../util/units";


/** "/nix/store/<hash>-openssl-3.0.13" → { name: "openssl", version: "3.0.13" } (Nix's parseDrvName rule). */
export function parseStoreName(storePath: string): { name: string; version: string } {
  const base = path.basename(storePath).replace(/^[0-9a-z]{32}-/, "");
  const m = /-(?=[^a-zA-Z])/.exec(base);
  return m ? { name: base.slice(0, m.index), version: base.slice(m.index + 1) } : { name: base, version: "" };
}

type Versions = Map<string, Set<string>>;

function versionsOf(closure: ClosurePath[]): Versions {
  const out: Versions = new Map();
  for (const p of closure) {
    const { name, version } = parseStoreName(p.path);
    if (!out.has(name)) out.set(name, new Set());
    if (version) out.get(name)!.add(version);
  }
  return out;
}

const list = (s: Set<string> | undefined) => [...(s ?? [])].sort().join(", ");

/** Package-level differences between two closures, one line per kind. */
export function packageChanges(before: ClosurePath[], after: ClosurePath[]): string[] {
  const a = versionsOf(before);
  const b = versionsOf(after);
  const added = [...b.keys()].filter((n) => !a.has(n)).sort();
  const removed = [...a.keys()].filter((n) => !b.has(n)).sort();
  const changed = [...b.keys()].filter((n) => a.has(n) && list(a.get(n)) !== list(b.get(n))).sort();
  const lines: string[] = [];
  if (changed.length) lines.push(`changed: ${changed.map((n) => `${n} ${list(a.get(n)) || "?"} → ${list(b.get(n)) || "?"}`).join("; ")}`);
  if (added.length) lines.push(`added: ${added.map((n) => (list(b.get(n)) ? `${n} ${list(b.get(n))}` : n)).join("; ")}`);
  if (removed.length) lines.push(`removed: ${removed.map((n) => (list(a.get(n)) ? `${n} ${list(a.get(n))}` : n)).join("; ")}`);
  const sizeOf = (c: ClosurePath[]) => c.reduce((s, p) => s + p.narSize, 0);
  const delta = sizeOf(after) - sizeOf(before);
  lines.push(`closure: ${(sizeOf(before) / MiB).toFixed(1)} → ${(sizeOf(after) / MiB).toFixed(1)} MiB (${delta >= 0 ? "+" : ""}${(delta / MiB).toFixed(1)} MiB)`);
  return lines;
}

function link(toplevel: string, name: string): string | undefined {
  try {
    return readlinkSync(path.join(toplevel, name));
  } catch {
    return undefined;
  }
}

/** Kernel/initrd change between two local toplevels: `switch` keeps running the old kernel. */
export function bootChanges(before: string, after: string): string[] {
  const changed = ["kernel", "initrd"].filter((f) => link(before, f) !== link(after, f));
  return changed.length ? [`${changed.join(" and ")} changed: reboot needed to run the new ${changed.join("/")}`] : [];
}

/**
 * What changes between the old and the new toplevel, or a line saying why it cannot be
 * told yet (the new system has not been built on this machine).
 */
export async function systemChanges(before: string, after: string): Promise<string[]> {
  const missing = [before, after].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    return [`(what changes inside is shown once ${missing.length === 2 ? "both systems are" : missing[0] === after ? "the new system is" : "the old system is"} in this machine's Nix store, e.g. after \`nix build\`)`];
  }
  const [a, b] = await Promise.all([closureOf(before), closureOf(after)]);
  // The toplevels themselves differ by definition; the packages inside are the news.
  const inside = (c: ClosurePath[]) => c.filter((p) => p.path !== before && p.path !== after);
  return [...packageChanges(inside(a), inside(b)), ...bootChanges(before, after)];
}
