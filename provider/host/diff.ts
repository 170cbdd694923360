import type * as pulumi from "@pulumi/pulumi";
import { canonicalJson } from "../util/canonical-json";
import { containsUnknown } from "../util/unknown";

/** Inputs whose change alters nothing on the machine or only how we reach it. */
const CONFIG_KEYS = ["connection", "switch", "build", "binaryCache", "install", "system"] as const;

/**
 * The engine's decision for a host, from the old outputs and the new checked inputs only
 * (no SSH): a changed disk layout or reinstall trigger replaces the host (delete before
 * replace, i.e. a reinstall); a changed toplevel store path is an update (a switch).
 */
export function diffHost(olds: Record<string, unknown>, news: Record<string, unknown>): pulumi.dynamic.DiffResult {
  const replaces: string[] = [];
  if (containsUnknown(news["layoutHash"]) || (olds["layoutHash"] ?? "") !== (news["layoutHash"] ?? "")) {
    replaces.push("diskLayout");
  }
  if (containsUnknown(news["reinstallTriggers"]) || !same(olds["reinstallTriggers"] ?? {}, news["reinstallTriggers"] ?? {})) {
    replaces.push("reinstallTriggers");
  }
  if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: true };

  const changed = containsUnknown(news["toplevel"]) || olds["toplevel"] !== news["toplevel"] ||
    CONFIG_KEYS.some((key) => !same(olds[key], news[key]));
  return { changes: changed, replaces: [], deleteBeforeReplace: false };
}

function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}
