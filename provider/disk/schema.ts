import { z } from "zod";
import { diskSchema } from "./disk";
import { lvmVgSchema } from "./lvm-vg";
import { nodevSchema } from "./nodev";

const unsupported = (what: string) => z.unknown().refine(() => false, { message: `${what} is not supported by DiskLayout; use disk (gpt) with luks, lvm_vg, btrfs, filesystem or swap` }).optional();

/** disko.devices: the node types DiskLayout renders. */
export const layoutShape = z
  .object({
    disk: z
      .record(z.string().regex(/^[A-Za-z0-9_.\/-]+$/, { message: "disk names hold letters, digits and _.-/" }), diskSchema)
      .refine((d) => Object.keys(d).length > 0, { message: "declare at least one disk" }),
    lvm_vg: z.record(z.string().regex(/^[A-Za-z0-9_+.-]+$/, { message: "volume group names hold letters, digits and _+.-" }), lvmVgSchema).optional(),
    mdadm: unsupported("mdadm"),
    zpool: unsupported("zpool (ZFS)"),
    bcachefs_filesystems: unsupported("bcachefs_filesystems"),
    nodev: z.record(z.string().regex(/^[^\0'"]+$/), nodevSchema).optional(),
  })
  .strict();

export type LayoutShape = z.output<typeof layoutShape>;
