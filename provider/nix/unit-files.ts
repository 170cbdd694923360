// systemd unit files as switch-to-configuration-ng reads them (its `parse_systemd_ini`,
// `parse_unit`): sections of keys, each key a list of values; an empty value clears the
// values before it; [Install] is left out; drop-ins (`<unit>.d/*.conf`, and for a template
// instance also the instance's own `.d`) are read after the unit, in name order.
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import * as path from "node:path";

export type UnitInfo = Map<string, Map<string, string[]>>;

/** One INI value as -ng's parser (rust-ini, quotes enabled, escapes disabled) yields it. */
function iniValue(raw: string): string {
  const v = raw.trim();
  return v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) ? v.slice(1, -1) : v;
}

/** Adds one unit file's text to `into` (called again for each drop-in). */
export function parseUnitText(into: UnitInfo, text: string): void {
  // Within one file, every key's values in order; across files, a key's values extend the
  // earlier ones unless the file cleared them with an empty value.
  const fileSections = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      section = fileSections.get(name) ?? new Map();
      fileSections.set(name, section);
      continue;
    }
    const eq = line.indexOf("=");
    if (!section || eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const values = section.get(key) ?? [];
    values.push(iniValue(line.slice(eq + 1)));
    section.set(key, values);
  }
  for (const [name, keys] of fileSections) {
    if (name === "Install") continue;
    const target = into.get(name) ?? new Map<string, string[]>();
    into.set(name, target);
    for (const [key, values] of keys) {
      const cleared = values.lastIndexOf("");
      const kept = values.slice(cleared + 1);
      const before = target.get(key);
      target.set(key, before && cleared < 0 ? [...before, ...kept] : kept);
    }
  }
}

/** `<unit file>.d/*.conf`, in the order -ng's glob yields them (sorted by name). */
function dropIns(unitFile: string): string[] {
  const dir = `${unitFile}.d`;
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith(".conf"))
      .sort()
      .map((f) => path.join(dir, f))
      .filter((f) => statSync(f).isFile());
  } catch {
    return [];
  }
}

/** Parses a unit (the base file, its drop-ins, and a template instance's own drop-ins). */
export function readUnit(unitFile: string, baseUnitFile: string = unitFile): UnitInfo {
  const info: UnitInfo = new Map();
  parseUnitText(info, readFileSync(baseUnitFile, "utf8"));
  for (const f of dropIns(baseUnitFile)) parseUnitText(info, readFileSync(f, "utf8"));
  if (unitFile !== baseUnitFile) for (const f of dropIns(unitFile)) parseUnitText(info, readFileSync(f, "utf8"));
  return info;
}

/** A boolean key's last value (1/yes/true/on are true), or the default when unset. */
export function unitBool(info: UnitInfo | undefined, section: string, key: string, fallback: boolean): boolean {
  const last = info?.get(section)?.get(key)?.at(-1);
  return last === undefined ? fallback : ["1", "yes", "true", "on"].includes(last);
}

/** A key's values, each split on whitespace (as -ng reads `Sockets=`). */
export function unitWords(info: UnitInfo | undefined, section: string, key: string): string[] {
  return (info?.get(section)?.get(key) ?? []).join(" ").split(/\s+/).filter(Boolean);
}

/** The unit names in a system's `etc/systemd/system` (files and links; not `.wants`/`.d` dirs). */
export function unitNames(unitDir: string): string[] {
  try {
    return readdirSync(unitDir)
      .filter((name) => /\.[a-z]+$/.test(name) && !/\.(wants|requires|upholds|d)$/.test(name))
      .sort();
  } catch {
    return [];
  }
}

/** Whether a unit's file exists and is not masked (a link to /dev/null, or dangling). */
export function unitPresent(file: string): boolean {
  try {
    return realpathSync(file) !== "/dev/null";
  } catch {
    return false;
  }
}
