/** What each node module renders; the tree walk (layout.ts) stitches these together. */
export interface NodeContext {
  /** Shell expression for the node's block device at install time (resolved without udev). */
  deviceVar: string;
  /** The stable device path NixOS uses at boot (by-partlabel, /dev/mapper, /dev/<vg>/<lv>). */
  stableDevice: string;
  /** Path in the layout, for messages: "disk.main.content.partitions.root". */
  path: string;
}

export interface MountStep {
  mountpoint: string;
  command: string;
}

export interface FileSystemConfig {
  device: string;
  fsType: string;
  options: string[];
}

export interface Rendered {
  /** Commands that create the node (and its content) on its device. */
  create: string[];
  /** Mount commands under /mnt, ordered later by mountpoint depth. */
  mounts: MountStep[];
  fileSystems: Record<string, FileSystemConfig>;
  swapDevices: { device: string }[];
  /** Commands that only open the node again (LUKS), for mounting an existing layout. */
  open?: string[];
}

export function emptyRendered(): Rendered {
  return { create: [], mounts: [], fileSystems: {}, swapDevices: [], open: [] };
}

export function merge(into: Rendered, from: Rendered): Rendered {
  into.create.push(...from.create);
  into.mounts.push(...from.mounts);
  Object.assign(into.fileSystems, from.fileSystems);
  into.swapDevices.push(...from.swapDevices);
  into.open = [...(into.open ?? []), ...(from.open ?? [])];
  return into;
}
