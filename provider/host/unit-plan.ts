// Which units a switch would stop, start, restart or reload, decided from the two systems'
// unit files (`<toplevel>/etc/systemd/system`) by the rules switch-to-configuration-ng
// applies (main.rs: the loop over active units, `compare_units`, `handle_modified_unit`,
// the fstab comparison), without asking the host. -ng acts only on units active on the host
// at the time of the switch; the preview cannot know them, so it takes the units the old
// system starts at boot as the active ones (see `bootUnits`) and names the other changed
// units separately.
import { readlinkSync, realpathSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { readUnit, unitBool, unitNames, unitPresent, unitWords, type UnitInfo } from "../nix/unit-files";

export type UnitComparison = "equal" | "restart" | "reload";

// [Unit] keys whose change alone neither restarts nor reloads (-ng's `unit_section_ignores`).
const IGNORED_UNIT_KEYS = new Set([
  "X-Reload-Triggers", "Description", "Documentation", "OnFailure", "OnSuccess", "OnFailureJobMode",
  "IgnoreOnIsolate", "StopWhenUnneeded", "RefuseManualStart", "RefuseManualStop", "AllowIsolate",
  "CollectMode", "SourcePath",
]);

const sameValues = (a: string[], b: string[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * -ng's `compare_units`: any difference restarts, except a changed `X-Reload-Triggers` (or a
 * mount's `Options`), which reloads, and the ignored [Unit] keys, which do nothing.
 */
export function compareUnits(current: UnitInfo, next: UnitInfo): UnitComparison {
  let verdict: UnitComparison = "equal";
  const unseenSections = new Set(next.keys());
  for (const [section, keys] of current) {
    const nextKeys = next.get(section);
    if (!nextKeys) {
      if (section === "Unit" && [...keys.keys()].every((k) => IGNORED_UNIT_KEYS.has(k))) continue;
      return "restart";
    }
    unseenSections.delete(section);
    const unseenKeys = new Set(nextKeys.keys());
    for (const [key, values] of keys) {
      unseenKeys.delete(key);
      const nextValues = nextKeys.get(key);
      if (!nextValues) {
        if (section === "Unit" && IGNORED_UNIT_KEYS.has(key)) continue;
        return "restart";
      }
      if (sameValues(values, nextValues)) continue;
      if (section === "Unit" && key === "X-Reload-Triggers") verdict = "reload";
      else if (section === "Unit" && IGNORED_UNIT_KEYS.has(key)) continue;
      else if (section === "Mount" && key === "Options") verdict = "reload";
      else return "restart";
    }
    for (const key of unseenKeys) {
      if (section !== "Unit") return "restart";
      if (key === "X-Reload-Triggers") verdict = "reload";
      else if (!IGNORED_UNIT_KEYS.has(key)) return "restart";
    }
  }
  if (unseenSections.size > 0) {
    if (unseenSections.size > 1 || !unseenSections.has("Unit")) return "restart";
    for (const key of next.get("Unit")!.keys()) {
      if (!IGNORED_UNIT_KEYS.has(key)) return "restart";
      if (key === "X-Reload-Triggers") verdict = "reload";
    }
  }
  return verdict;
}

export interface UnitPlan {
  stop: Set<string>;
  start: Set<string>;
  restart: Set<string>;
  reload: Set<string>;
  /** Changed, but `restartIfChanged = false` (or RefuseManualStop / X-OnlyManualStart): left running. */
  skip: Set<string>;
  /** Started but not shown (-ng does not list the active targets it starts again). */
  hidden: Set<string>;
  /** Swap devices the new fstab no longer has: turned off with swapoff. */
  swapOff: string[];
}

const emptyPlan = (): UnitPlan => ({ stop: new Set(), start: new Set(), restart: new Set(), reload: new Set(), skip: new Set(), hidden: new Set(), swapOff: [] });

interface UnitFiles {
  unitFile: string;
  baseFile: string;
  baseName: string;
}

/** -ng's template handling: an instance without a file of its own uses `name@.type`. */
function filesOf(unitDir: string, otherDir: string, unit: string): UnitFiles {
  let base = unit;
  const template = /^(.*)@[^.]*\.(.*)$/.exec(unit);
  if (template && !unitPresentOrLink(path.join(unitDir, unit)) && !unitPresentOrLink(path.join(otherDir, unit))) base = `${template[1]}@.${template[2]}`;
  return { unitFile: path.join(unitDir, unit), baseFile: path.join(unitDir, base), baseName: /^(.*)\.[a-z]*$/.exec(base)?.[1] ?? base };
}

// Rust's Path::exists: follows links, false when dangling.
function unitPresentOrLink(file: string): boolean {
  try {
    realpathSync(file);
    return true;
  } catch {
    return false;
  }
}

/** -ng's `handle_modified_unit` for a unit active now whose files differ and need a restart. */
function handleModified(plan: UnitPlan, newDir: string, unit: string, baseName: string, next: UnitInfo, active: Set<string>): void {
  if (["sysinit.target", "basic.target", "multi-user.target", "graphical.target"].includes(unit) || unit.endsWith(".unit") || unit.endsWith(".slice")) return;
  if (unit.endsWith(".mount")) {
    // / and /nix are remounted, never unmounted.
    (unit === "-.mount" || unit === "nix.mount" ? plan.reload : plan.restart).add(unit);
    return;
  }
  if (unit.endsWith(".socket") || unit.startsWith("systemd-nspawn@")) return;
  if (unitBool(next, "Service", "X-ReloadIfChanged", false) && !plan.restart.has(unit) && !plan.stop.has(unit)) {
    plan.reload.add(unit);
    return;
  }
  if (!unitBool(next, "Service", "X-RestartIfChanged", true) || unitBool(next, "Unit", "RefuseManualStop", false) || unitBool(next, "Unit", "X-OnlyManualStart", false)) {
    plan.skip.add(unit);
    return;
  }
  if (!unitBool(next, "Service", "X-StopIfChanged", true) || !unit.endsWith(".service")) {
    plan.restart.add(unit);
    plan.reload.delete(unit);
    return;
  }
  // stopIfChanged: stopped before the activation, started after it; a socket-activated
  // service is left to its sockets, which are stopped and started instead.
  let socketActivated = false;
  const sockets = unitWords(next, "Service", "Sockets");
  for (const socket of sockets.length ? sockets : [`${baseName}.socket`]) {
    if (!active.has(socket)) continue;
    plan.stop.add(socket);
    if (unitPresentOrLink(path.join(newDir, socket))) {
      plan.start.add(socket);
      socketActivated = true;
    }
    plan.reload.delete(unit);
  }
  if (unitBool(next, "Service", "X-NotSocketActivated", false)) socketActivated = false;
  if (!socketActivated) plan.start.add(unit);
  plan.stop.add(unit);
  plan.reload.delete(unit);
}

interface FstabEntry {
  device: string;
  fsType: string;
  options: string;
}

/** -ng's `parse_fstab`: lines with a `#` anywhere are skipped. */
export function parseFstab(text: string): { filesystems: Map<string, FstabEntry>; swaps: string[] } {
  const filesystems = new Map<string, FstabEntry>();
  const swaps: string[] = [];
  for (const line of text.split("\n")) {
    if (line.includes("#")) continue;
    const [device, mountpoint, fsType, options = ""] = line.trim().split(/\s+/);
    if (!device || !mountpoint || !fsType) continue;
    if (fsType === "swap") swaps.push(device);
    else filesystems.set(mountpoint, { device, fsType, options });
  }
  return { filesystems, swaps };
}

/** `systemd-escape --suffix=mount -p <path>`. */
export function mountUnitName(mountpoint: string): string {
  const trimmed = mountpoint.replace(/\/+/g, "/").replace(/^\/|\/$/g, "");
  if (trimmed === "") return "-.mount";
  const escaped = [...Buffer.from(trimmed, "utf8")]
    .map((byte, i) => {
      const c = String.fromCharCode(byte);
      if (c === "/") return "-";
      if (/[A-Za-z0-9:_]/.test(c) || (c === "." && i > 0)) return c;
      return `\\x${byte.toString(16).padStart(2, "0")}`;
    })
    .join("");
  return `${escaped}.mount`;
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** The fstab comparison: changed filesystems are remounted or re-mounted, removed ones unmounted. */
function planMounts(plan: UnitPlan, oldToplevel: string, newToplevel: string): void {
  const before = parseFstab(readText(path.join(oldToplevel, "etc/fstab")));
  const after = parseFstab(readText(path.join(newToplevel, "etc/fstab")));
  for (const [mountpoint, fs] of before.filesystems) {
    const unit = mountUnitName(mountpoint);
    const next = after.filesystems.get(mountpoint);
    if (!next) plan.stop.add(unit);
    else if (fs.fsType !== next.fsType || fs.device !== next.device) {
      if (mountpoint === "/" || mountpoint === "/nix") (fs.options !== next.options ? plan.reload : plan.skip).add(unit);
      else plan.restart.add(unit);
    } else if (fs.options !== next.options) plan.reload.add(unit);
  }
  plan.swapOff = before.swaps.filter((d) => !after.swaps.includes(d));
}

const SLEEP_TARGETS = new Set(["suspend.target", "hibernate.target", "hybrid-sleep.target"]);

/**
 * What -ng does with the units in `active` (units active on the host when it runs) switching
 * from `oldToplevel` to `newToplevel`, both in this machine's store.
 */
export function planUnits(oldToplevel: string, newToplevel: string, active: Set<string>): UnitPlan {
  const plan = emptyPlan();
  const oldDir = path.join(oldToplevel, "etc/systemd/system");
  const newDir = path.join(newToplevel, "etc/systemd/system");
  for (const unit of [...active].sort()) {
    const cur = filesOf(oldDir, newDir, unit);
    const nxt = filesOf(newDir, oldDir, unit);
    if (!unitPresentOrLink(cur.baseFile)) continue;
    if (!unitPresent(nxt.baseFile)) {
      if (unitBool(readUnit(cur.unitFile, cur.baseFile), "Unit", "X-StopOnRemoval", true)) plan.stop.add(unit);
    } else if (unit.endsWith(".target")) {
      const next = readUnit(nxt.unitFile, nxt.baseFile);
      if (!(SLEEP_TARGETS.has(unit) || unitBool(next, "Unit", "RefuseManualStart", false) || unitBool(next, "Unit", "X-OnlyManualStart", false))) {
        plan.start.add(unit);
        plan.hidden.add(unit);
      }
      if (unitBool(next, "Unit", "X-StopOnReconfiguration", false)) plan.stop.add(unit);
    } else {
      const next = readUnit(nxt.unitFile, nxt.baseFile);
      const verdict = compareUnits(readUnit(cur.unitFile, cur.baseFile), next);
      if (verdict === "restart") handleModified(plan, newDir, unit, nxt.baseName, next, active);
      else if (verdict === "reload" && !plan.restart.has(unit)) plan.reload.add(unit);
    }
  }
  planMounts(plan, oldToplevel, newToplevel);
  return plan;
}

const WANT_DIRS = [".wants", ".requires", ".upholds"];

/**
 * The units a system starts at boot: from `default.target` (else multi-user.target), every
 * unit its `<unit>.wants/` / `.requires/` links and `Wants=` / `Requires=` / `Upholds=` keys
 * reach. The preview's stand-in for "active on the host": a unit started or stopped by hand
 * since, or one only a socket, timer or another host started, is not in it.
 */
export function bootUnits(toplevel: string): Set<string> {
  const dir = path.join(toplevel, "etc/systemd/system");
  let root = "multi-user.target";
  try {
    root = path.basename(readlinkSync(path.join(dir, "default.target")));
  } catch {
    // no default.target link: NixOS's default is multi-user.target
  }
  const seen = new Set<string>();
  const queue = [root];
  while (queue.length) {
    const unit = queue.shift()!;
    if (seen.has(unit)) continue;
    const files = filesOf(dir, dir, unit);
    if (!unitPresent(files.baseFile)) continue;
    seen.add(unit);
    for (const suffix of WANT_DIRS) queue.push(...unitNames(path.join(dir, unit + suffix)));
    const info = readUnit(files.unitFile, files.baseFile);
    for (const key of ["Wants", "Requires", "Upholds"]) queue.push(...unitWords(info, "Unit", key));
  }
  return seen;
}

/** Units whose files differ between the systems (or exist in only one), whatever their state. */
export function changedUnits(oldToplevel: string, newToplevel: string): { changed: string[]; added: string[]; removed: string[] } {
  const oldDir = path.join(oldToplevel, "etc/systemd/system");
  const newDir = path.join(newToplevel, "etc/systemd/system");
  const before = new Set(unitNames(oldDir).filter((u) => unitPresent(path.join(oldDir, u))));
  const after = new Set(unitNames(newDir).filter((u) => unitPresent(path.join(newDir, u))));
  const changed = [...before].filter((u) => after.has(u) && compareUnits(readUnit(path.join(oldDir, u)), readUnit(path.join(newDir, u))) !== "equal");
  return { changed, added: [...after].filter((u) => !before.has(u)), removed: [...before].filter((u) => !after.has(u)) };
}

/** -ng's own order for its lists: by name, case-insensitive. */
export const byName = (units: Iterable<string>): string[] =>
  [...units].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0));

function linkTarget(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined;
  }
}

/**
 * The preview's lines, worded as `switch-to-configuration dry-activate` prints them, for the
 * units the old system starts at boot; then the new units the new system starts, and the
 * changed units the preview cannot tell are running.
 */
export function unitPlanLines(oldToplevel: string, newToplevel: string): string[] {
  const active = bootUnits(oldToplevel);
  const plan = planUnits(oldToplevel, newToplevel, active);
  const { changed, added } = changedUnits(oldToplevel, newToplevel);
  const lines: string[] = [];
  const list = (label: string, units: Iterable<string>) => {
    const names = byName(units);
    if (names.length) lines.push(`${label}: ${names.join(", ")}`);
  };
  list("would stop the following units", [...plan.stop].filter((u) => !plan.hidden.has(u)));
  list("would NOT stop the following changed units", plan.skip);
  for (const device of plan.swapOff) lines.push(`would stop swap device: ${device}`);
  // -ng re-executes PID 1 when the systemd package or system.conf changes.
  if (linkTarget(path.join(oldToplevel, "systemd")) !== linkTarget(path.join(newToplevel, "systemd")) || linkTarget(path.join(oldToplevel, "etc/systemd/system.conf")) !== linkTarget(path.join(newToplevel, "etc/systemd/system.conf"))) lines.push("would restart systemd");
  list("would reload the following units", plan.reload);
  list("would restart the following units", plan.restart);
  list("would start the following units", [...plan.start].filter((u) => !plan.hidden.has(u)));
  const newBoot = bootUnits(newToplevel);
  list("new units started with their target", added.filter((u) => newBoot.has(u) && !u.endsWith(".target")));
  list("changed units not started at boot (acted on only if active on the host then)", changed.filter((u) => !active.has(u)));
  return lines;
}
