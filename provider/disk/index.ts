import { z } from "zod";
import { canonicalJson, sha256Hex } from "../resources/canonical-json";

// Foundation version: validates the outer disko shape and hashes it. The per-node
// modules (gpt, filesystem, swap, luks, lvm) replace the loose `content` below.
export const diskLayoutSchema = z
  .object({
    disk: z.record(
      z.string().regex(/^[A-Za-z0-9_-]+$/, "disk names may hold letters, digits, '-' and '_'"),
      z.object({
        type: z.literal("disk").default("disk"),
        device: z.string().startsWith("/dev/", "give the block device path, e.g. /dev/vda"),
        content: z.record(z.string(), z.unknown()),
      }).strict(),
    ).refine((d) => Object.keys(d).length > 0, "declare at least one disk"),
  })
  .strict();

export type DiskLayoutInput = z.input<typeof diskLayoutSchema>;
export type DiskLayoutSpec = z.output<typeof diskLayoutSchema>;

export interface RenderedLayout {
  spec: DiskLayoutSpec;
  hash: string;
}

export function renderLayout(spec: DiskLayoutSpec): RenderedLayout {
  return { spec, hash: sha256Hex(canonicalJson(spec)) };
}
