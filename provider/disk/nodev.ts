import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { absolutePath } from "./args";
import { emptyRendered, mountTarget, type Rendered } from "./node";

/** disko sets the device of these to their fsType (nixpkgs' specialFSTypes); others get "none". */
const SPECIAL_FS_TYPES = ["proc", "sysfs", "tmpfs", "ramfs", "devtmpfs", "devpts"];

/** disko's `nodev` node (lib/types/nodev.nix): a filesystem without a device, e.g. tmpfs on /. */
export const nodevSchema = z
  .object({
    type: z.literal("nodev").default("nodev"),
    fsType: z.string({ error: 'give fsType, e.g. "tmpfs"' }).regex(/^[a-z0-9]+$/, { message: 'give a filesystem type, e.g. "tmpfs"' }),
    device: z.string().regex(/^[^\s'"]+$/).optional(),
    mountpoint: absolutePath("/").nullish(),
    mountOptions: z.array(z.string()).default(["defaults"]),
  })
  .strict()
  .transform((n) => ({ ...n, device: n.device ?? (SPECIAL_FS_TYPES.includes(n.fsType) ? n.fsType : "none") }));

export type Nodev = z.output<typeof nodevSchema>;

/** disko: the mountpoint defaults to the attribute name. */
export function nodevMountpoint(key: string, node: Nodev): string | null {
  return node.mountpoint === undefined ? key : node.mountpoint;
}

export function renderNodev(key: string, node: Nodev): Rendered {
  // Mounted through the preamble's mount_nodev, whose tools are the preamble's.
  const out = emptyRendered([]);
  const mountpoint = nodevMountpoint(key, node);
  if (!mountpoint) return out;
  // A bind mount's source lives on the new system, under /mnt (as disko mounts it).
  const device = node.mountOptions.includes("bind") ? mountTarget(node.device) : node.device;
  out.mounts.push({
    mountpoint,
    command: `mount_nodev ${shellQuote(node.fsType)} ${shellQuote(device)} ${shellQuote(mountTarget(mountpoint))} ${shellQuote(node.mountOptions.join(",") || "defaults")}`,
  });
  out.nixos.fileSystems[mountpoint] = { device: node.device, fsType: node.fsType, options: node.mountOptions };
  return out;
}
