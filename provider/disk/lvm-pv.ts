import { z } from "zod";
import { emptyRendered, type NodeContext, type Rendered } from "./node";

/** disko's `lvm_pv` node (lib/types/lvm_pv.nix). */
export const lvmPvSchema = z.object({ type: z.literal("lvm_pv"), vg: z.string().min(1, "name the lvm_vg this physical volume belongs to") }).strict();
export type LvmPv = z.output<typeof lvmPvSchema>;

/** Marks the device as a PV; the volume group is created once all its PVs exist. */
export function renderLvmPv(_pv: LvmPv, ctx: NodeContext): Rendered {
  const out = emptyRendered(["pvcreate"]);
  out.create.push(`pvcreate -ff -y ${ctx.deviceVar} >/dev/null`);
  return out;
}
