import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { absolutePath } from "./args";
import { emptyRendered, mountTarget, type NodeContext, type Rendered } from "./node";

/** Smallest sizes mkfs accepts (vfat FAT32 needs ~32 MiB; ext4 and xfs refuse tinier). */
export const MIN_BYTES: Record<string, number> = {
  vfat: 2 * 1024 ** 2,
  ext2: 2 * 1024 ** 2,
  ext3: 2 * 1024 ** 2,
  ext4: 2 * 1024 ** 2,
  xfs: 300 * 1024 ** 2,
  btrfs: 110 * 1024 ** 2,
};

export const FORMATS = ["ext4", "ext3", "ext2", "vfat", "xfs", "btrfs"] as const;

export const mountpointSchema = absolutePath("/boot");

/** disko's `filesystem` node (lib/types/filesystem.nix). */
export const filesystemSchema = z
  .object({
    type: z.literal("filesystem"),
    /** Any mkfs.<format> (disko: a string); the create script checks the installer has it before wiping. */
    format: z.string({ error: () => `give format, e.g. ${FORMATS.map((f) => `"${f}"`).join(", ")}` }).regex(/^[a-z0-9]+$/, { message: `format names a mkfs.<format> program, e.g. ${FORMATS.map((f) => `"${f}"`).join(", ")}` }),
    mountpoint: mountpointSchema.nullish(),
    mountOptions: z.array(z.string()).default(["defaults"]),
    /** Passed to mkfs one argument each (disko: lib.escapeShellArgs). */
    extraArgs: z.array(z.string()).default([]),
    subvolumes: z
      .unknown()
      .refine(() => false, { message: 'subvolumes belong to disko\'s btrfs node: write content { type: "btrfs", subvolumes: { ... } } instead of a filesystem with format "btrfs"' })
      .optional(),
  })
  .strict();

export type Filesystem = z.output<typeof filesystemSchema>;

/** The program that formats `format` (disko's filesystem `_pkgs` name the packages per format). */
export function mkfsTool(format: string): string {
  return `mkfs.${format}`;
}

export function mkfsCommand(format: string, extraArgs: string[], device: string): string {
  // We wipe the disk first, but an old signature can survive at a partition's new offset.
  const force = format === "vfat" ? [] : format.startsWith("ext") ? ["-F", "-q"] : ["-f"];
  return [mkfsTool(format), ...force, ...extraArgs, device].join(" ");
}

/** Mounted through the preamble's mount_once, whose tools are the preamble's. */
export function renderFilesystem(fs: Filesystem, ctx: NodeContext): Rendered {
  const out = emptyRendered([mkfsTool(fs.format)]);
  out.create.push(mkfsCommand(fs.format, fs.extraArgs.map(shellQuote), ctx.deviceVar));
  if (fs.mountpoint) {
    out.mounts.push({ mountpoint: fs.mountpoint, command: mountCommand(fs.format, ctx.deviceVar, fs.mountpoint, fs.mountOptions) });
    out.nixos.fileSystems[fs.mountpoint] = { device: ctx.stableDevice, fsType: fs.format, options: fs.mountOptions };
  }
  return out;
}

/** What may change without formatting: how and where it is mounted. */
export function filesystemFormatView(fs: Filesystem): unknown {
  const { mountpoint: _m, mountOptions: _o, ...rest } = fs;
  return rest;
}

/** Idempotent: an already mounted target with the same device is left as it is. */
export function mountCommand(fsType: string, device: string, mountpoint: string, options: string[]): string {
  return `mount_once ${fsType} ${device} ${shellQuote(mountTarget(mountpoint))} ${shellQuote(options.join(",") || "defaults")}`;
}
