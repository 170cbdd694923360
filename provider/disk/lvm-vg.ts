import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { contentSchema, renderContent, type PvCollector } from "./content";
import { emptyRendered, merge, type Rendered } from "./node";

export const lvmVgSchema = z
  .object({
    type: z.literal("lvm_vg").default("lvm_vg"),
    lvs: z.record(
      z.string().regex(/^[A-Za-z0-9_+.-]+$/, { message: "logical volume names hold letters, digits and _+.-" }),
      z
        .object({
          size: z.string().regex(/^([0-9]+[KMGTP]?|[0-9]{1,3}%(FREE|VG))$/, { message: 'give an LV size like "20G" or "100%FREE"' }),
          content: contentSchema.optional(),
        })
        .strict(),
    ),
  })
  .strict();

export type LvmVg = z.output<typeof lvmVgSchema>;

/** Creates the volume group from its PVs, then each LV (percent sizes last) and its content. */
export function renderLvmVg(name: string, vg: LvmVg, pvs: string[], addPv: PvCollector): Rendered {
  const out = emptyRendered();
  out.create.push(`vgcreate -y ${shellQuote(name)} ${pvs.join(" ")} >/dev/null`);
  const ordered = Object.entries(vg.lvs).sort(([an, a], [bn, b]) => Number(a.size.includes("%")) - Number(b.size.includes("%")) || an.localeCompare(bn));
  for (const [lvName, lv] of ordered) {
    const sizeFlag = lv.size.includes("%") ? `-l ${lv.size}` : `-L ${lv.size}`;
    out.create.push(`lvcreate -y ${sizeFlag} -n ${shellQuote(lvName)} ${shellQuote(name)} >/dev/null`);
    const device = `/dev/${name}/${lvName}`;
    merge(out, renderContent(lv.content, { deviceVar: device, stableDevice: device, path: `lvm_vg.${name}.lvs.${lvName}.content` }, addPv));
  }
  out.open?.push(`vgchange -ay ${shellQuote(name)} >/dev/null`);
  return out;
}
