import { createHash } from "node:crypto";
import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { contentFormatView, contentSchema, renderContent, type Content, type PvCollector } from "./content";
import { emptyRendered, merge, type NodeContext, type Rendered } from "./node";
import { sizeSchema } from "./size";

const sgdiskPosition = (field: string, example: string) =>
  z.string().regex(/^[+-]?[0-9]+[KMGTPs]?$/, { message: `give ${field} in sgdisk's format, e.g. "${example}" (sectors with "s")` });

export const partitionSchema = z
  .object({
    name: z.string().min(1).optional(),
    size: sizeSchema.default("0"),
    start: sgdiskPosition("start", "1M").default("0"),
    end: sgdiskPosition("end", "-1G").optional(),
    alignment: z.number().int().min(0).optional(),
    type: z
      .string()
      .regex(/^([A-Fa-f0-9]{4}|[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12})$/, {
        message: 'give an sgdisk type code like "8300", "EF00", "EF02" or a full GUID',
      })
      .optional(),
    attributes: z.array(z.number().int().min(0).max(63)).default([]),
    uuid: z.string().regex(/^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/, { message: "give the partition GUID like 809b3a2b-828a-4730-95e1-75b6343e415a" }).nullish(),
    priority: z.number().int().optional(),
    /** sgdisk keeps 36 characters of a name; a longer one would not match by-partlabel. */
    label: z.string().min(1).max(36, { message: "GPT partition names hold at most 36 characters (sgdisk cuts longer ones); shorten the label or leave it out (disko then hashes a long default label)" }).regex(/^[^\0\n]*$/).optional(),
    content: contentSchema.nullish(),
    hybrid: z.null({ error: () => "hybrid MBR entries are not supported; leave hybrid out (a GPT with an EF02 partition boots GRUB on BIOS)" }).optional(),
  })
  .strict();

export const gptSchema = z
  .object({
    type: z.literal("gpt", { error: () => 'the disk content type is "gpt" (legacy msdos tables, zfs and mdadm disks are not supported)' }),
    partitions: z.record(z.string().regex(/^[^\0'"\n]+$/, { message: "partition names hold no quotes" }), partitionSchema).default({}),
    efiGptPartitionFirst: z.literal(true, { error: () => "efiGptPartitionFirst only matters for hybrid MBRs, which are not supported; leave it out" }).optional(),
  })
  .strict();

export type Gpt = z.output<typeof gptSchema>;

/** A partition as disko normalizes it. */
export interface NormalizedPartition {
  /** Attribute name in `partitions`. */
  key: string;
  name: string;
  index: number;
  priority: number;
  label: string;
  size: string;
  start: string;
  end: string;
  alignment: number;
  type: string;
  uuid: string | null;
  attributes: number[];
  content: Content | null | undefined;
  /** What NixOS names it at boot (by-partuuid or by-partlabel, as disko). */
  stableDevice: string;
}

/** disko's defaults: EF02 first (100), "100%" last (9001), others 1000. */
export function defaultPriority(p: { size: string; type: string }): number {
  if (p.size === "100%") return 9001;
  if (p.type === "EF02") return 100;
  return 1000;
}

/** disko's default label, `disk-<disk>-<partition>`, hashed (sha256, 36 hex digits) when longer than GPT allows. */
export function defaultLabel(diskName: string, partName: string): string {
  const label = `disk-${diskName}-${partName}`;
  return label.length > 36 ? createHash("sha256").update(label).digest("hex").slice(0, 36) : label;
}

/** udev's escaping of by-partlabel link names (disko's hexEscapeUdevSymlink). */
export function hexEscapeUdevSymlink(name: string): string {
  return [...name].map((c) => (/^[0-9A-Za-z#+\-.:=@_/]$/.test(c) ? c : `\\x${c.codePointAt(0)!.toString(16).toUpperCase()}`)).join("");
}

export function normalizePartitions(diskName: string, gpt: Gpt): NormalizedPartition[] {
  const byKey = Object.keys(gpt.partitions).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return byKey
    .map((key) => {
      const p = gpt.partitions[key]!;
      const name = p.name ?? key;
      const type = p.type ?? (p.content?.type === "swap" ? "8200" : "8300");
      const end = p.end ?? (p.size === "100%" ? "-0" : `+${p.size}`);
      const label = p.label ?? defaultLabel(diskName, name);
      return {
        key,
        name,
        priority: p.priority ?? defaultPriority({ size: p.size, type }),
        label,
        size: p.size,
        start: p.start,
        end,
        alignment: p.alignment ?? (p.start.endsWith("s") || end.endsWith("s") ? 1 : 0),
        type,
        uuid: p.uuid ?? null,
        attributes: [...new Set(p.attributes)],
        content: p.content,
        stableDevice: p.uuid ? `/dev/disk/by-partuuid/${p.uuid}` : `/dev/disk/by-partlabel/${hexEscapeUdevSymlink(label)}`,
      };
    })
    .sort((a, b) => a.priority - b.priority) // stable: ties keep attribute order, like Nix's sort
    .map((p, i) => ({ ...p, index: i + 1 }));
}

/**
 * The programs the gpt node calls (disko's gpt `_pkgs`: gptfdisk, and parted and systemd for
 * partprobe and udevadm, which here are the preamble's reread_partitions optional tools).
 */
const GPT_TOOLS = ["sgdisk"];

export function renderGpt(diskName: string, gpt: Gpt, ctx: NodeContext, addPv: PvCollector): Rendered {
  const out = emptyRendered(GPT_TOOLS);
  out.create.push(`sgdisk --zap-all ${ctx.deviceVar} >/dev/null`);
  const partitions = normalizePartitions(diskName, gpt);
  for (const p of partitions) {
    const i = p.index;
    out.create.push(
      [
        "sgdisk --align-end",
        ...(p.alignment !== 0 ? [`--set-alignment=${p.alignment}`] : []),
        `--new=${i}:${p.start}:${p.end}`,
        `--partition-guid=${i}:${p.uuid ?? "R"}`,
        `--change-name=${shellQuote(`${i}:${p.label}`)}`,
        `--typecode=${i}:${p.type}`,
        `--attributes=${i}:=:0`,
        ...p.attributes.map((bit) => `--attributes=${i}:set:${bit}`),
        ctx.deviceVar,
        ">/dev/null",
      ].join(" "),
    );
  }
  out.create.push(`reread_partitions ${ctx.deviceVar}`);
  if (partitions.some((p) => p.type === "EF02")) out.nixos.grubDevices.push(ctx.stableDevice);
  for (const p of partitions) {
    const partition: NodeContext = {
      deviceVar: `"$(partition_device ${ctx.deviceVar} ${p.index})"`,
      stableDevice: p.stableDevice,
      path: `${ctx.path}.partitions.${p.key}.content`,
    };
    merge(out, renderContent(p.content, partition, addPv));
  }
  return out;
}

/** Everything about a partition table needs formatting to change, except how contents mount. */
export function gptFormatView(diskName: string, gpt: Gpt): unknown {
  return normalizePartitions(diskName, gpt).map(({ content, stableDevice: _s, ...p }) => ({ ...p, content: contentFormatView(content) }));
}
