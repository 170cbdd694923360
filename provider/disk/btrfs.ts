import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { shellWords, wordListSchema } from "./args";
import { mkfsCommand, mkfsTool, mountCommand, mountpointSchema } from "./filesystem";
import { emptyRendered, type NodeContext, type Rendered, type SwapDeviceConfig } from "./node";

/** Swap files inside a btrfs filesystem or subvolume (disko's `swap` of the btrfs node). */
const swapFilesSchema = z
  .record(
    z.string(),
    z
      .object({
        size: z.string().regex(/^[0-9]+[KMGTP]$/, { message: 'give the swap file size with a unit, e.g. "8G"' }),
        path: z.string().regex(/^[^\0'"]+$/).optional(),
        priority: z.number().int().nullish(),
        options: z.array(z.string().min(1)).default(["defaults"]),
      })
      .strict(),
  )
  .default({});

const subvolumeSchema = z
  .object({
    name: z.string().optional(),
    type: z.literal("btrfs_subvol").default("btrfs_subvol"),
    extraArgs: wordListSchema,
    mountOptions: z.array(z.string()).default(["defaults"]),
    mountpoint: mountpointSchema.nullish(),
    swap: swapFilesSchema,
  })
  .strict();

/** disko's `btrfs` node (lib/types/btrfs.nix): a filesystem with subvolumes and swap files. */
export const btrfsSchema = z
  .object({
    type: z.literal("btrfs"),
    extraArgs: wordListSchema,
    mountOptions: z.array(z.string()).default(["defaults"]),
    mountpoint: mountpointSchema.nullish(),
    subvolumes: z.record(z.string().regex(/^[^\0'"]+$/, { message: "subvolume names are paths without quotes" }), subvolumeSchema).default({}),
    swap: swapFilesSchema,
  })
  .strict();

export type Btrfs = z.output<typeof btrfsSchema>;

/** Nix's order of attribute names: by bytes. */
function byName(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
type SwapFiles = z.output<typeof swapFilesSchema>;

function swapFileCreate(dir: string, files: SwapFiles): string[] {
  return Object.entries(files).map(
    ([name, f]) => `btrfs filesystem mkswapfile --size ${f.size} ${dir}/${shellQuote(f.path ?? name)} >/dev/null`,
  );
}

function swapFileDevices(mountpoint: string, files: SwapFiles): SwapDeviceConfig[] {
  return Object.entries(files).map(([name, f]) => ({ device: `${mountpoint}/${f.path ?? name}`, priority: f.priority ?? null, options: f.options }));
}

/** What creating subvolumes or swap files under a mount of the top volume calls, and each subvolume's parent directory. */
const TOP_MOUNT_TOOLS = ["btrfs", "mktemp", "mount", "umount", "rmdir"];
const SUBVOLUME_TOOLS = ["mkdir", "dirname"];

export function renderBtrfs(fs: Btrfs, ctx: NodeContext): Rendered {
  // disko creates them in attribute-name order (lib.attrValues): "/home" before "/home/user".
  const subvolumes = Object.keys(fs.subvolumes).sort(byName).map((key) => ({ ...fs.subvolumes[key]!, name: fs.subvolumes[key]!.name ?? key }));
  const swapAnywhere = Object.keys(fs.swap).length > 0 || subvolumes.some((s) => Object.keys(s.swap).length > 0);
  const inside = subvolumes.length > 0 || swapAnywhere;
  const out = emptyRendered([mkfsTool("btrfs"), ...(inside ? TOP_MOUNT_TOOLS : []), ...(subvolumes.length > 0 ? SUBVOLUME_TOOLS : [])]);
  out.create.push(mkfsCommand("btrfs", shellWords(fs.extraArgs), ctx.deviceVar));
  if (inside) {
    out.create.push(`btrfs_top=$(mktemp -d) && mount -t btrfs -o subvol=/ ${ctx.deviceVar} "$btrfs_top"`);
    out.create.push(...swapFileCreate(`"$btrfs_top"`, fs.swap));
    for (const s of subvolumes) {
      const abs = `"$btrfs_top"/${shellQuote(s.name.replace(/^\/+/, ""))}`;
      out.create.push(`mkdir -p "$(dirname ${abs})" && btrfs subvolume create ${abs} ${shellWords(s.extraArgs).join(" ")} >/dev/null`.replace(/ +>/, " >"));
      out.create.push(...swapFileCreate(abs, s.swap));
    }
    out.create.push(`umount "$btrfs_top" && rmdir "$btrfs_top"`);
  }
  for (const s of subvolumes) {
    if (!s.mountpoint) continue;
    const options = [...s.mountOptions, `subvol=${s.name}`];
    out.mounts.push({ mountpoint: s.mountpoint, command: mountCommand("btrfs", ctx.deviceVar, s.mountpoint, options) });
    out.nixos.fileSystems[s.mountpoint] = { device: ctx.stableDevice, fsType: "btrfs", options };
  }
  if (fs.mountpoint) {
    out.mounts.push({ mountpoint: fs.mountpoint, command: mountCommand("btrfs", ctx.deviceVar, fs.mountpoint, fs.mountOptions) });
    out.nixos.fileSystems[fs.mountpoint] = { device: ctx.stableDevice, fsType: "btrfs", options: fs.mountOptions };
  }
  for (const s of subvolumes) if (s.mountpoint) out.nixos.swapDevices.push(...swapFileDevices(s.mountpoint, s.swap));
  if (fs.mountpoint) out.nixos.swapDevices.push(...swapFileDevices(fs.mountpoint, fs.swap));
  return out;
}

/** Issues no schema can see alone: swap files need a mountpoint to be found at boot. */
export function btrfsIssues(fs: Btrfs): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  if (Object.keys(fs.swap).length > 0 && !fs.mountpoint) issues.push({ path: ["swap"], message: "swap files need the btrfs node to have a mountpoint (NixOS finds them under it)" });
  for (const [name, s] of Object.entries(fs.subvolumes)) {
    if (Object.keys(s.swap).length > 0 && !s.mountpoint) issues.push({ path: ["subvolumes", name, "swap"], message: "swap files need the subvolume to have a mountpoint" });
  }
  return issues;
}

/** Mountpoints and mount options change without formatting; subvolumes and swap files do not. */
export function btrfsFormatView(fs: Btrfs): unknown {
  const { mountpoint: _m, mountOptions: _o, subvolumes, swap, ...rest } = fs;
  const subs = Object.fromEntries(
    Object.entries(subvolumes).map(([k, s]) => [k, { name: s.name ?? k, extraArgs: s.extraArgs, swap: swapSizes(s.swap) }]),
  );
  return { ...rest, subvolumes: subs, swap: swapSizes(swap) };
}

function swapSizes(files: SwapFiles): unknown {
  return Object.fromEntries(Object.entries(files).map(([k, f]) => [k, { size: f.size, path: f.path ?? k }]));
}
