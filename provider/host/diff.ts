import type * as pulumi from "@pulumi/pulumi";
import { canonicalJson } from "../util/canonical-json";
import { containsUnknown, UNKNOWN } from "../util/unknown";

/** Inputs whose change alters nothing on the machine or only how we reach it. */
const CONFIG_KEYS = ["connection", "switch", "build", "binaryCache", "copy", "install", "system", "takeOver"] as const;

/**
 * The engine's decision for a host, from the old outputs and the new checked inputs only
 * (no SSH): a changed disk layout or reinstall trigger replaces the host (delete before
 * replace, i.e. a reinstall); a changed toplevel store path is an update (a switch).
 */
export function diffHost(olds: Record<string, unknown>, news: Record<string, unknown>): pulumi.dynamic.DiffResult {
  const replaces: string[] = [];
  if (layoutNeedsFormatting(olds, news)) replaces.push("diskLayout");
  if (changedTriggers(olds["reinstallTriggers"], news["reinstallTriggers"]).length > 0) replaces.push("reinstallTriggers");
  if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: true };

  const changed = containsUnknown(news["toplevel"]) || olds["toplevel"] !== news["toplevel"] ||
    CONFIG_KEYS.some((key) => !same(olds[key], news[key])) || !same(olds["reinstallTriggers"] ?? {}, news["reinstallTriggers"] ?? {}) ||
    (olds["layoutMountHash"] ?? "") !== (news["layoutMountHash"] ?? "") ||
    // Another stack took the machine over (seen at refresh): the update says so, and refuses.
    typeof olds["managedBy"] === "string" ||
    (olderLayoutHashes(olds) && layoutHashesDiffer(olds, news));
  return { changes: changed, replaces: [], deleteBeforeReplace: false };
}

/**
 * Triggers whose value changed. A trigger seen for the first time (also: triggers added to a
 * host that had none) records its baseline; only a later change of that value reinstalls.
 */
export function changedTriggers(olds: unknown, news: unknown): string[] {
  const before = (olds ?? {}) as Record<string, unknown>;
  if (news === UNKNOWN) return Object.keys(before).length > 0 ? ["*"] : [];
  const after = (news ?? {}) as Record<string, unknown>;
  return Object.keys(after).filter((k) => k in before && (containsUnknown(after[k]) || before[k] !== after[k]));
}

/**
 * Only a layout change that needs formatting (partition table, formats, encryption,
 * volumes) reinstalls; how filesystems mount is carried by the system's NixOS module.
 * State written before the split has only the whole-layout hash: compare that.
 */
function layoutNeedsFormatting(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  if (containsUnknown(news["layoutFormatHash"]) || containsUnknown(news["layoutHash"])) return true;
  if (olderLayoutHashes(olds)) return false;
  if (olds["layoutFormatHash"] === undefined && olds["layoutHash"] !== undefined) return olds["layoutHash"] !== news["layoutHash"];
  return (olds["layoutFormatHash"] ?? "") !== (news["layoutFormatHash"] ?? "");
}

/**
 * The state holds hashes an older version made of a diskoFile or a flake's disko script,
 * which this version cannot hash again as they were (the file may have changed since): a
 * difference may be the renderer's alone, so it never reinstalls; the update records this
 * version's hashes (nothing runs on the machine).
 */
function olderLayoutHashes(olds: Record<string, unknown>): boolean {
  return olds["__olderLayoutHashes"] === true;
}

function layoutHashesDiffer(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  return (olds["layoutFormatHash"] ?? olds["layoutHash"] ?? "") !== (news["layoutFormatHash"] ?? news["layoutHash"] ?? "");
}

function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

/** Devices a layout declaration names ("/dev/sda"), or a description of where they come from. */
function layoutDevices(layout: unknown): string {
  const declared = (layout as { declared?: { disk?: Record<string, { device?: unknown }>; diskoFile?: unknown } } | undefined)?.declared;
  if (!declared) return "its disks";
  if (typeof declared.diskoFile === "string") return `the disks of ${declared.diskoFile}`;
  const devices = Object.values(declared.disk ?? {}).map((d) => (typeof d.device === "string" ? d.device : "(unknown device)"));
  return devices.length > 0 ? devices.join(", ") : "its disks";
}

/** The lines a preview prints for a host: what the engine's verdict will do to the machine. */
export function explainHostDiff(olds: Record<string, unknown>, news: Record<string, unknown>, result: pulumi.dynamic.DiffResult): string[] {
  const lines: string[] = [];
  const replaces = result.replaces ?? [];
  if (replaces.length > 0) {
    const why: string[] = [];
    if (replaces.includes("diskLayout")) why.push(containsUnknown(news["layoutHash"]) ? "the disk layout is not known yet" : "the disk layout changed in what only formatting can change: partition table, formats, encryption or volumes");
    if (replaces.includes("reinstallTriggers")) {
      const keys = changedTriggers(olds["reinstallTriggers"], news["reinstallTriggers"]);
      const o = (olds["reinstallTriggers"] ?? {}) as Record<string, unknown>;
      const n = (news["reinstallTriggers"] ?? {}) as Record<string, unknown>;
      why.push(keys.map((k) => (k === "*" ? "reinstallTriggers not known yet" : `reinstallTriggers.${k} ${show(o[k])} → ${show(n[k])}`)).join(", "));
    }
    lines.push(news["diskLayout"] !== undefined
      ? `reinstall (${why.join("; ")}): wipes ${layoutDevices(news["diskLayout"])} and installs ${show(news["toplevel"])}`
      : `re-adopt (${why.join("; ")}): forgets the host and adopts it again, switching it to ${show(news["toplevel"])}; no disk is touched`);
    return lines;
  }
  if (!result.changes) return lines;
  const oldTop = olds["toplevel"];
  const newTop = news["toplevel"];
  const managedBy = olds["managedBy"];
  if (typeof managedBy === "string") {
    const stack = /^stack (\S+)/.exec(managedBy)?.[1] ?? managedBy;
    lines.push(news["takeOver"] !== undefined
      ? `taken over by ${managedBy} (seen at refresh): takeOver ${show(news["takeOver"])} takes it back${oldTop !== newTop ? `, switching it to ${show(newTop)}` : ""} if it names that stack`
      : `taken over by ${managedBy} (seen at refresh): the update refuses and changes nothing on the machine; ` +
          `to take it back set takeOver: ${JSON.stringify(stack)}, or remove this NixosHost from the program to forget the machine here`);
    return lines;
  }
  if (containsUnknown(newTop)) {
    lines.push(`switch: ${show(oldTop)} → (a system not known until the update runs)`);
  } else if (oldTop !== newTop) {
    const deployed = olds["deployedToplevel"];
    if (typeof deployed === "string" && deployed !== oldTop) {
      lines.push(`drift: running ${show(oldTop)} (changed outside Pulumi), declared ${show(newTop)}: the update switches it back`);
    } else {
      lines.push(`switch: ${show(oldTop)} → ${show(newTop)}`);
    }
  }
  const quiet: string[] = [];
  for (const key of ["connection", "switch", "build", "install"] as const) if (!same(olds[key], news[key])) quiet.push(key);
  if (!same(olds["takeOver"], news["takeOver"]) && news["takeOver"] !== undefined) quiet.push("takeOver (the machine's owner record decides, under the deploy lock)");
  else if (!same(olds["takeOver"], news["takeOver"])) quiet.push("takeOver");
  if (!same(olds["reinstallTriggers"] ?? {}, news["reinstallTriggers"] ?? {})) quiet.push("reinstallTriggers (baseline recorded, no reinstall)");
  const olderHashes = olderLayoutHashes(olds) && layoutHashesDiffer(olds, news);
  if (olderHashes) {
    quiet.push(
      `diskLayout hash (recorded by an older nixos-pulumi, which hashed ${layoutDevices(news["diskLayout"])} otherwise; ` +
        "not reinstalled for that: the update records this version's hash. If you did change the layout's formatting, reinstall with a changed reinstallTriggers value)",
    );
  }
  if (!olderHashes && (olds["layoutMountHash"] ?? "") !== (news["layoutMountHash"] ?? "")) quiet.push("diskLayout mounts (mountpoints or options; the system's NixOS module carries them, nothing is reformatted)");
  if (quiet.length > 0 && oldTop === newTop) lines.push(`update: ${quiet.join(", ")} changed; nothing runs on the machine${quiet.includes("connection") ? " (a changed address or host key is verified with an SSH handshake)" : ""}`);
  return lines;
}

function show(value: unknown): string {
  if (containsUnknown(value)) return "(unknown)";
  if (value === undefined || value === "") return "(none)";
  return typeof value === "string" ? value : JSON.stringify(value);
}
