import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import type { PvCollector } from "./content";
import { gptSchema, renderGpt } from "./gpt";
import type { Rendered } from "./node";

export const diskSchema = z
  .object({
    type: z.literal("disk").default("disk"),
    device: z.string({ error: 'give the whole disk\'s device path, e.g. "/dev/vda"' }).regex(/^\/dev\/[^\s'"]+$/, { message: 'give the whole disk\'s device path, e.g. "/dev/vda" or "/dev/disk/by-id/…"' }),
    content: gptSchema,
  })
  .strict();

export type Disk = z.output<typeof diskSchema>;

export function renderDisk(name: string, disk: Disk, addPv: PvCollector): Rendered {
  return renderGpt(name, disk.content, { deviceVar: shellQuote(disk.device), stableDevice: disk.device, path: `disk.${name}.content` }, addPv);
}
