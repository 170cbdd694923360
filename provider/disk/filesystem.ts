import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import type { NodeContext, Rendered } from "./node";

/** Smallest sizes mkfs accepts (vfat FAT32 needs ~32 MiB; ext4 and xfs refuse tinier). */
export const MIN_BYTES: Record<string, number> = {
  vfat: 2 * 1024 ** 2,
  ext4: 2 * 1024 ** 2,
  xfs: 300 * 1024 ** 2,
  btrfs: 110 * 1024 ** 2,
};

const mountpoint = z.string().regex(/^\/[^\0]*$/, { message: 'mountpoints are absolute paths, e.g. "/" or "/boot"' });

export const filesystemSchema = z
  .object({
    type: z.literal("filesystem"),
    format: z.enum(["ext4", "vfat", "xfs", "btrfs"], { error: () => 'format is one of "ext4", "vfat", "xfs", "btrfs"' }),
    mountpoint: mountpoint.optional(),
    mountOptions: z.array(z.string().min(1)).default(["defaults"]),
    extraArgs: z.array(z.string()).default([]),
    /** btrfs only: subvolumes by name, each with an optional mountpoint. */
    subvolumes: z
      .record(z.string().regex(/^[A-Za-z0-9_@.\/-]+$/), z.object({ mountpoint: mountpoint.optional(), mountOptions: z.array(z.string()).default([]) }).strict())
      .default({}),
  })
  .strict()
  .refine((f) => f.format === "btrfs" || Object.keys(f.subvolumes).length === 0, {
    message: 'subvolumes need format "btrfs"',
    path: ["subvolumes"],
  });

export type Filesystem = z.output<typeof filesystemSchema>;

function mkfs(fs: Filesystem, device: string): string {
  const force = fs.format === "vfat" ? [] : fs.format === "ext4" ? ["-F"] : ["-f"];
  const quiet = fs.format === "ext4" ? ["-q"] : [];
  return [`mkfs.${fs.format}`, ...force, ...quiet, ...fs.extraArgs.map(shellQuote), device].join(" ");
}

export function renderFilesystem(fs: Filesystem, ctx: NodeContext): Rendered {
  const create = [mkfs(fs, ctx.deviceVar)];
  const mounts: Rendered["mounts"] = [];
  const fileSystems: Rendered["fileSystems"] = {};
  if (fs.format === "btrfs" && Object.keys(fs.subvolumes).length > 0) {
    create.push(`btrfs_tmp=$(mktemp -d) && mount -t btrfs ${ctx.deviceVar} "$btrfs_tmp"`);
    for (const name of Object.keys(fs.subvolumes).sort()) create.push(`btrfs subvolume create "$btrfs_tmp"/${shellQuote(name)}`);
    create.push(`umount "$btrfs_tmp" && rmdir "$btrfs_tmp"`);
    for (const [name, sub] of Object.entries(fs.subvolumes)) {
      if (!sub.mountpoint) continue;
      const options = [...sub.mountOptions, `subvol=${name}`];
      mounts.push({ mountpoint: sub.mountpoint, command: mountCommand("btrfs", ctx.deviceVar, sub.mountpoint, options) });
      fileSystems[sub.mountpoint] = { device: ctx.stableDevice, fsType: "btrfs", options };
    }
  }
  if (fs.mountpoint) {
    mounts.push({ mountpoint: fs.mountpoint, command: mountCommand(fs.format, ctx.deviceVar, fs.mountpoint, fs.mountOptions) });
    fileSystems[fs.mountpoint] = { device: ctx.stableDevice, fsType: fs.format, options: fs.mountOptions };
  }
  return { create, mounts, fileSystems, swapDevices: [] };
}

function mountCommand(fsType: string, device: string, mountpoint: string, options: string[]): string {
  const target = `/mnt${mountpoint === "/" ? "" : mountpoint}`;
  return `ensure_filesystem ${fsType} && mkdir -p ${shellQuote(target)} && mount -t ${fsType} -o ${shellQuote(options.join(","))} ${device} ${shellQuote(target)}`;
}
