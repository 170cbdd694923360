import type { z } from "zod";
import { parseInputs } from "../schema/zod-errors";
import { readDiskoFile } from "./disko-file";
import { layoutShape, type LayoutShape } from "./schema";
import { addLayoutIssues } from "./validate";

export { renderLayout, type RenderedLayout } from "./render";
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
