import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import type { PvCollector } from "./content";
import { gptFormatView, gptSchema, renderGpt } from "./gpt";
import type { Rendered } from "./node";

const imageOnly = (field: string) =>
  z.unknown().refine(() => false, { message: `${field} only applies to disko's VM images; DiskLayout installs onto the real disk, so leave it out` }).optional();

/** disko's `disk` node (lib/types/disk.nix). */
export const diskSchema = z
  .object({
    type: z.literal("disk").default("disk"),
    /** Names the disk in default partition labels (disko: the attribute name, "/" turned "_"). */
    name: z.string().min(1).optional(),
    device: z.string({ error: 'give the whole disk\'s device path, e.g. "/dev/vda"' }).regex(/^\/dev\/[^\s'"]+$/, { message: 'give the whole disk\'s device path, e.g. "/dev/vda" or "/dev/disk/by-id/…"' }),
    // A union, so that another table type gets the one message, not one per field it has.
    content: z.discriminatedUnion("type", [gptSchema], { error: () => 'the disk content type is "gpt" (legacy msdos tables, zfs and mdadm disks are not supported)' }),
    destroy: z.literal(true, { error: () => "destroy: false cannot be honoured: an install formats every disk of the layout; leave the disk out of the layout instead" }).optional(),
    imageName: imageOnly("imageName"),
    imageSize: imageOnly("imageSize"),
  })
  .strict();

export type Disk = z.output<typeof diskSchema>;

export function diskName(key: string, disk: Disk): string {
  return disk.name ?? key.replace(/\//g, "_");
}

export function renderDisk(key: string, disk: Disk, addPv: PvCollector): Rendered {
  return renderGpt(diskName(key, disk), disk.content, { deviceVar: shellQuote(disk.device), stableDevice: disk.device, path: `disk.${key}.content` }, addPv);
}

export function diskFormatView(key: string, disk: Disk): unknown {
  return { device: disk.device, partitions: gptFormatView(diskName(key, disk), disk.content) };
}
