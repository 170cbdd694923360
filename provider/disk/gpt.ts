import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { contentSchema, renderContent, type PvCollector } from "./content";
import { emptyRendered, merge, type NodeContext, type Rendered } from "./node";
import { sizeSchema } from "./size";

export const partitionSchema = z
  .object({
    size: sizeSchema.default("0"),
    type: z
      .string()
      .regex(/^([A-Fa-f0-9]{4}|[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12})$/, {
        message: 'give an sgdisk type code like "8300", "EF00", "EF02" or a full GUID',
      })
      .default("8300"),
    priority: z.number().int().optional(),
    label: z.string().regex(/^[^\s'"]{1,36}$/, { message: "GPT labels are up to 36 characters without spaces or quotes" }).optional(),
    content: contentSchema.optional(),
  })
  .strict();

export const gptSchema = z
  .object({
    type: z.literal("gpt", { error: () => 'the disk content type is "gpt"' }),
    partitions: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, { message: "partition names hold letters, digits, '-' and '_'" }), partitionSchema),
  })
  .strict();

export type Gpt = z.output<typeof gptSchema>;

/** A partition as disko normalizes it: priority, label, index (1-based, by priority). */
export interface NormalizedPartition {
  name: string;
  index: number;
  priority: number;
  label: string;
  size: string;
  type: string;
  content: z.output<typeof partitionSchema>["content"];
}

/** disko's defaults: EF02 first (100), "100%" last (9001), others 1000; ties by name. */
export function defaultPriority(p: { size: string; type: string }): number {
  if (p.size === "100%") return 9001;
  if (p.type.toUpperCase() === "EF02") return 100;
  return 1000;
}

export function normalizePartitions(diskName: string, gpt: Gpt): NormalizedPartition[] {
  return Object.entries(gpt.partitions)
    .map(([name, p]) => ({
      name,
      priority: p.priority ?? defaultPriority(p),
      label: p.label ?? `disk-${diskName}-${name}`,
      size: p.size,
      type: p.type.toUpperCase(),
      content: p.content,
    }))
    .sort((a, b) => a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p, i) => ({ ...p, index: i + 1 }));
}

export function renderGpt(diskName: string, gpt: Gpt, ctx: NodeContext, addPv: PvCollector): Rendered {
  const out = emptyRendered();
  out.create.push(`release_disk ${ctx.deviceVar}`, `sgdisk --zap-all ${ctx.deviceVar} >/dev/null`);
  for (const p of normalizePartitions(diskName, gpt)) {
    const end = p.size === "100%" ? "-0" : `+${p.size}`;
    out.create.push(
      `sgdisk --align-end --new=${p.index}:0:${end} --change-name=${p.index}:${shellQuote(p.label)} --typecode=${p.index}:${p.type} ${ctx.deviceVar} >/dev/null`,
      `reread_partitions ${ctx.deviceVar}`,
    );
    const partition: NodeContext = {
      deviceVar: `"$(partition_device ${ctx.deviceVar} ${p.index})"`,
      stableDevice: `/dev/disk/by-partlabel/${p.label}`,
      path: `${ctx.path}.partitions.${p.name}.content`,
    };
    merge(out, renderContent(p.content, partition, addPv));
  }
  return out;
}
