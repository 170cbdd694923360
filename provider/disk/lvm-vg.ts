import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { shellWords, wordListSchema } from "./args";
import { contentSchema, renderContent, type Content, type PvCollector } from "./content";
import { emptyRendered, merge, type Rendered } from "./node";

const lvSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_+.-]+$/, { message: "logical volume names hold letters, digits and _+.-" }).optional(),
    priority: z.number().int().optional(),
    size: z.string().regex(/^([0-9]+(\.[0-9]+)?[bBsSkKmMgGtTpPeE]?|[0-9]{1,3}(\.[0-9]+)?%(FREE|VG|PVS)?)$/, {
      message: 'give an LV size like "20G", "100%" (the free space left, as disko: -l 100%FREE), "50%FREE" or "10%VG"',
    }),
    lvm_type: z.null({ error: () => "lvm_type (RAID, mirror and thin LVs) is not supported; leave it out for a linear LV" }).optional(),
    pool: z.null({ error: () => "pool is for thin LVs, which are not supported; leave it out" }).optional(),
    extraArgs: wordListSchema,
    content: contentSchema.nullish(),
  })
  .strict();

/** disko's `lvm_vg` node (lib/types/lvm_vg.nix). */
export const lvmVgSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_+.-]+$/, { message: "volume group names hold letters, digits and _+.-" }).optional(),
    type: z.literal("lvm_vg").default("lvm_vg"),
    lvs: z.record(z.string().regex(/^[A-Za-z0-9_+.-]+$/, { message: "logical volume names hold letters, digits and _+.-" }), lvSchema).default({}),
  })
  .strict();

export type LvmVg = z.output<typeof lvmVgSchema>;

export interface NormalizedLv {
  key: string;
  name: string;
  priority: number;
  size: string;
  extraArgs: string[];
  content: Content | null | undefined;
}

/** disko's order: priority (1000, +251 when the size holds "100%"), ties by attribute name. */
export function normalizeLvs(vg: LvmVg): NormalizedLv[] {
  return Object.keys(vg.lvs)
    .sort(byteOrder)
    .map((key) => {
      const lv = vg.lvs[key]!;
      return { key, name: lv.name ?? key, priority: lv.priority ?? 1000 + (lv.size.includes("100%") ? 251 : 0), size: lv.size, extraArgs: lv.extraArgs, content: lv.content };
    })
    .sort((a, b) => a.priority - b.priority);
}

/** lvcreate's size arguments as disko writes them: "N%" means N%FREE. */
export function lvSizeArgs(size: string): string {
  if (!size.includes("%")) return `-L ${size}`;
  return `-l ${size.endsWith("%") ? `${size}FREE` : size}`;
}

export function vgName(key: string, vg: LvmVg): string {
  return vg.name ?? key;
}

/** Creates the volume group from its PVs, then each LV in disko's order, then their contents. */
export function renderLvmVg(key: string, vg: LvmVg, pvs: string[], addPv: PvCollector): Rendered {
  const name = vgName(key, vg);
  // vgchange: the preamble's vg_activate, which only the open commands below call.
  const out = emptyRendered(["vgcreate", "lvcreate", "vgchange"]);
  out.create.push(`vgcreate -y ${shellQuote(name)} ${pvs.join(" ")} >/dev/null`);
  const lvs = normalizeLvs(vg);
  for (const lv of lvs) {
    out.create.push(["lvcreate -y", lvSizeArgs(lv.size), "-n", shellQuote(lv.name), ...shellWords(lv.extraArgs), shellQuote(name), ">/dev/null"].join(" "));
  }
  // Activated only from its PVs on the layout's devices: another disk's VG of the same name stays out.
  out.open.push(`vg_activate ${shellQuote(name)} ${pvs.join(" ")}`);
  out.nixos.initrdKernelModules.push("dm-snapshot");
  for (const lv of lvs) {
    const device = `/dev/${name}/${lv.name}`;
    merge(out, renderContent(lv.content ?? undefined, { deviceVar: device, stableDevice: device, path: `lvm_vg.${key}.lvs.${lv.key}.content` }, addPv));
  }
  return out;
}

export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
