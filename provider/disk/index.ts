import type { z } from "zod";
import { parseInputs } from "../schema/zod-errors";
import { readDiskoFile } from "./disko-file";
import { layoutShape, type LayoutShape } from "./schema";
import { addLayoutIssues } from "./validate";

export { renderLayout, type RenderedLayout } from "./render";
export { normalizePartitions, type NormalizedPartition } from "./gpt";

/** disko's devices schema with the rules across nodes (one "100%" per disk, a "/", ...). */
export const diskLayoutSchema = layoutShape.superRefine(addLayoutIssues);

export type DiskLayoutInput = z.input<typeof layoutShape>;
export type DiskLayoutSpec = LayoutShape;

/** The layout a DiskLayout declares: inline (disk, lvm_vg) or read from a disko .nix file. */
export async function resolveLayout(declared: Record<string, unknown>, resource = "DiskLayout"): Promise<LayoutShape> {
  const { diskoFile, disk, lvm_vg } = declared;
  if (typeof diskoFile === "string") {
    if (disk !== undefined || lvm_vg !== undefined) {
      parseInputs(resource, layoutShape.refine(() => false, { message: "give either diskoFile or disk/lvm_vg, not both", path: ["diskoFile"] }), {});
    }
    return parseInputs(`${resource} (from ${diskoFile})`, diskLayoutSchema, await readDiskoFile(diskoFile));
  }
  return parseInputs(resource, diskLayoutSchema, lvm_vg === undefined ? { disk } : { disk, lvm_vg });
}
