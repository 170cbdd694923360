/** What each node module renders; the tree walk (render.ts) stitches these together. */
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

/** A NixOS swapDevices entry, in the shape disko's swap node gives it. */
export interface SwapDeviceConfig {
  device: string;
  discardPolicy?: string | null;
  priority?: number | null;
  randomEncryption?: { enable: boolean; allowDiscards: boolean };
  options?: string[];
}

/** The NixOS configuration a layout implies (disko's `_config` of each node). */
export interface NixosDiskConfig {
  fileSystems: Record<string, FileSystemConfig>;
  swapDevices: SwapDeviceConfig[];
  /** boot.initrd.luks.devices */
  luksDevices: Record<string, Record<string, unknown>>;
  /** boot.initrd.kernelModules */
  initrdKernelModules: string[];
  /** boot.loader.grub.devices (disks with an EF02 partition) */
  grubDevices: string[];
  /** boot.resumeDevice */
  resumeDevice?: string;
}

export interface Rendered {
  /** Commands that create the node (and its content) on its device. */
  create: string[];
  /** Mount commands under /mnt, ordered later by mountpoint depth; each is idempotent. */
  mounts: MountStep[];
  /** Commands that only open the node again (LUKS, VGs), for mounting an existing layout; idempotent. */
  open: string[];
  nixos: NixosDiskConfig;
  /**
   * The programs this node's commands call (disko's `_pkgs`, as program names), declared by
   * the node next to what it renders; the preamble's functions declare their own (preamble.ts).
   */
  tools: string[];
}

export function emptyNixos(): NixosDiskConfig {
  return { fileSystems: {}, swapDevices: [], luksDevices: {}, initrdKernelModules: [], grubDevices: [] };
}

/** A node's output, starting with the tools its commands call. */
export function emptyRendered(tools: string[]): Rendered {
  return { create: [], mounts: [], open: [], nixos: emptyNixos(), tools: [...tools] };
}

export function merge(into: Rendered, from: Rendered): Rendered {
  into.create.push(...from.create);
  into.mounts.push(...from.mounts);
  into.open.push(...from.open);
  for (const t of from.tools) if (!into.tools.includes(t)) into.tools.push(t);
  const a = into.nixos;
  const b = from.nixos;
  Object.assign(a.fileSystems, b.fileSystems);
  a.swapDevices.push(...b.swapDevices);
  Object.assign(a.luksDevices, b.luksDevices);
  for (const m of b.initrdKernelModules) if (!a.initrdKernelModules.includes(m)) a.initrdKernelModules.push(m);
  for (const d of b.grubDevices) if (!a.grubDevices.includes(d)) a.grubDevices.push(d);
  if (b.resumeDevice !== undefined) a.resumeDevice = b.resumeDevice;
  return into;
}

/** Target of a mountpoint under the installer's /mnt. */
export function mountTarget(mountpoint: string): string {
  return `/mnt${mountpoint === "/" ? "" : mountpoint}`;
}
