import type { z } from "zod";
import { parseInputs } from "../schema/zod-errors";
import { readDiskoFile } from "./disko-file";
import { diskoScriptSchema, evalDiskoScript, renderDiskoScript } from "./disko-script";
import { renderLayout, type RenderedLayout } from "./render";
import { layoutShape, type LayoutShape } from "./schema";
import { addLayoutIssues } from "./validate";

export { renderLayout, type RenderedLayout };
export { normalizePartitions, type NormalizedPartition } from "./gpt";
export { normalizeLvs } from "./lvm-vg";
export type { NixosDiskConfig } from "./node";

/** disko's devices schema with the rules across nodes (one "100%" per disk, a "/", ...). */
export const diskLayoutSchema = layoutShape.superRefine(addLayoutIssues);

export type DiskLayoutInput = z.input<typeof layoutShape>;
export type DiskLayoutSpec = LayoutShape;

/** disko.devices' top-level keys (the unsupported ones are refused by the schema). */
const DEVICE_KEYS = ["disk", "lvm_vg", "mdadm", "zpool", "nodev", "bcachefs_filesystems"] as const;

/** The layout a DiskLayout declares: inline (disk, lvm_vg) or read from a disko .nix file. */
export async function resolveLayout(declared: Record<string, unknown>, resource = "DiskLayout"): Promise<LayoutShape> {
  const { diskoFile } = declared;
  const inline = Object.fromEntries(DEVICE_KEYS.map((k) => [k, declared[k]]));
  if (typeof diskoFile === "string") {
    if (Object.values(inline).some((v) => v !== undefined)) {
      parseInputs(resource, layoutShape.refine(() => false, { message: "give either diskoFile or the devices (disk, lvm_vg), not both", path: ["diskoFile"] }), {});
    }
    return parseInputs(`${resource} (from ${diskoFile})`, diskLayoutSchema, await readDiskoFile(diskoFile));
  }
  const devices = Object.fromEntries(Object.entries(inline).filter(([, v]) => v !== undefined));
  return parseInputs(resource, diskLayoutSchema, devices);
}

/** Renders what a DiskLayout declares: devices, a disko file, or the system's disko script. */
export async function renderDeclared(declared: Record<string, unknown>, resource = "DiskLayout"): Promise<RenderedLayout> {
  if (declared["diskoScript"] !== undefined) {
    const others = Object.entries(declared).filter(([k, v]) => k !== "diskoScript" && v !== undefined && (DEVICE_KEYS as readonly string[]).concat("diskoFile").includes(k));
    if (others.length > 0) parseInputs(resource, layoutShape.refine(() => false, { message: "give either diskoScript or the devices (disk, lvm_vg) / diskoFile, not both", path: ["diskoScript"] }), {});
    const spec = parseInputs(resource, diskoScriptSchema, declared["diskoScript"]);
    return renderDiskoScript(await evalDiskoScript(spec));
  }
  return renderLayout(await resolveLayout(declared, resource));
}
