import type { z } from "zod";
import { InputError } from "../errors";
import { parseInputs } from "../schema/zod-errors";
import { readDiskoFile } from "./disko-file";
import { diskoScriptSchema, evalDiskoScript, renderDiskoScript } from "./disko-script";
import { renderLayout, type RenderedLayout } from "./render";
import { layoutShape, type LayoutShape } from "./schema";
import { addLayoutIssues } from "./validate";

export { renderLayout, type RenderedLayout };
export { normalizePartitions, type NormalizedPartition } from "./gpt";
export { normalizeLvs } from "./lvm-vg";
export { diskName } from "./disk";
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
  const given = Object.keys(inline).filter((k) => inline[k] !== undefined);
  if (diskoFile !== undefined && given.length > 0) {
    throw new InputError(resource, [{ path: "diskoFile", message: `give either diskoFile or the devices (disk, lvm_vg, nodev), not both; ${given.join(", ")} given too` }]);
  }
  if (diskoFile !== undefined && typeof diskoFile !== "string") throw new InputError(resource, [{ path: "diskoFile", message: 'give the path of a disko .nix file, e.g. "./disko-config.nix"' }]);
  if (typeof diskoFile === "string") return parseInputs(`${resource} (from ${diskoFile})`, diskLayoutSchema, await readDiskoFile(diskoFile));
  if (diskoFile === undefined && given.length === 0) throw new InputError(resource, [{ path: "(root)", message: NEITHER }]);
  return parseInputs(resource, diskLayoutSchema, Object.fromEntries(given.map((k) => [k, inline[k]])));
}

const NEITHER = "give the layout one way: the devices (disk, with lvm_vg and nodev as needed), diskoFile (a disko .nix file) or diskoScript (the system's own disko script)";

/** Renders what a DiskLayout declares: devices, a disko file, or the system's disko script. */
export async function renderDeclared(declared: Record<string, unknown>, resource = "DiskLayout"): Promise<RenderedLayout> {
  if (declared["diskoScript"] !== undefined) {
    const others = [...DEVICE_KEYS, "diskoFile"].filter((k) => declared[k] !== undefined);
    if (others.length > 0) {
      throw new InputError(resource, [{ path: "diskoScript", message: `give either diskoScript or the devices (disk, lvm_vg, nodev) / diskoFile, not both; ${others.join(", ")} given too` }]);
    }
    const spec = parseInputs(resource, diskoScriptSchema, declared["diskoScript"]);
    return renderDiskoScript(await evalDiskoScript(spec));
  }
  return renderLayout(await resolveLayout(declared, resource));
}
