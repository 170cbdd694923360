// The tree walk: disks (by name) and their partitions (by priority), then volume groups;
// each node module renders itself; this file orders the pieces into the scripts.
import { canonicalJson, sha256Hex } from "../util/canonical-json";
import { shellQuote } from "../util/shell-quote";
import { contentFormatView, contentNodes, type Content } from "./content";
import { diskFormatView, renderDisk } from "./disk";
import { toDiskoNix } from "./disko-nix";
import { normalizePartitions } from "./gpt";
import { normalizeLvs, renderLvmVg, vgName } from "./lvm-vg";
import { emptyRendered, merge, type FileSystemConfig, type NixosDiskConfig, type SwapDeviceConfig } from "./node";
import { toNixosModule } from "./nixos-module";
import { renderNodev } from "./nodev";
import { preamble, preambleTools } from "./preamble";
import type { LayoutShape } from "./schema";

export interface RenderedLayout {
  spec: LayoutShape;
  /** Hash of the whole layout. */
  hash: string;
  /** Hash of what needs formatting to change: tables, formats, encryption, volumes. */
  formatHash: string;
  /** Hash of how the filesystems mount (mountpoints, options, swap and LUKS opening options). */
  mountHash: string;
  diskoNix: string;
  /** Wipes, partitions and formats the named disks only, then mounts everything under /mnt. */
  script: string;
  /** Mounts an existing layout under /mnt (opens LUKS, activates VGs), wiping nothing; idempotent. */
  mountScript: string;
  /** Unmounts, deactivates and closes what is stacked on the layout's disks, wiping nothing. */
  releaseScript: string;
  fileSystems: Record<string, FileSystemConfig>;
  swapDevices: SwapDeviceConfig[];
  /** Everything the layout implies for the NixOS system. */
  nixos: NixosDiskConfig;
  /** The same as a NixOS module file. */
  nixosModule: string;
  /**
   * The programs the scripts call: those the layout's nodes declare (sgdisk, mkfs.*,
   * cryptsetup, LVM, ...) and the preamble's (coreutils, util-linux, grep, sed, awk). The
   * create script requires them; the install brings those the installer lacks from the system
   * (provider/install/layout-tools.ts).
   */
  tools: string[];
  /** The preamble's tools called only as a fallback or when the machine has them (partprobe, udevadm, modprobe, ...). */
  optionalTools: string[];
  /** Set when the layout is the system's own disko script: copied to the target and run. */
  diskoScript?: { storePath: string; derivation?: string | undefined };
}

/** The layout without what only changes how it mounts. */
export function formatView(spec: LayoutShape): unknown {
  const disks = Object.keys(spec.disk).sort().map((k) => [k, diskFormatView(k, spec.disk[k]!)]);
  const vgs = Object.keys(spec.lvm_vg ?? {}).sort().map((k) => {
    const vg = spec.lvm_vg![k]!;
    return [vgName(k, vg), normalizeLvs(vg).map(({ content, key: _k, ...lv }) => ({ ...lv, content: contentFormatView(content) }))];
  });
  return { disks, vgs };
}

export function renderLayout(spec: LayoutShape): RenderedLayout {
  const hash = sha256Hex(canonicalJson(spec));
  const formatHash = sha256Hex(canonicalJson(formatView(spec)));
  const pvs = new Map<string, string[]>();
  const addPv = (vg: string, device: string) => pvs.set(vg, [...(pvs.get(vg) ?? []), device]);
  const all = emptyRendered([]);
  const diskKeys = Object.keys(spec.disk).sort();
  for (const key of diskKeys) merge(all, renderDisk(key, spec.disk[key]!, addPv));
  // lvm_pv.vg names the volume group by its name (disko: lvm_vg.<key>.name, default the key).
  for (const key of Object.keys(spec.lvm_vg ?? {}).sort()) merge(all, renderLvmVg(key, spec.lvm_vg![key]!, pvs.get(vgName(key, spec.lvm_vg![key]!)) ?? [], addPv));
  // nodev filesystems format nothing: they belong to the mount hash only.
  for (const key of Object.keys(spec.nodev ?? {}).sort()) merge(all, renderNodev(key, spec.nodev![key]!));
  const mountHash = sha256Hex(canonicalJson(all.nixos));

  const mounts = [...all.mounts].sort((a, b) => depth(a.mountpoint) - depth(b.mountpoint) || a.mountpoint.localeCompare(b.mountpoint));
  const devices = diskKeys.map((k) => spec.disk[k]!.device);
  const header = `#!/bin/sh\n# nixos-pulumi DiskLayout ${formatHash.slice(0, 16)}`;
  const checkDisks = devices.map((d) => `[ -b ${shellQuote(d)} ] || { echo "disk ${d} is not a block device on this machine" >&2; exit 1; }`);
  const names = [
    `LAYOUT_LUKS=${shellQuote(luksNames(spec).join(" "))}`,
    `LAYOUT_VGS=${shellQuote(Object.entries(spec.lvm_vg ?? {}).map(([k, vg]) => vgName(k, vg)).join(" "))}`,
  ];
  const functions = preamble();
  const { required, optional } = preambleTools(functions);
  const tools = [...new Set([...required, ...all.tools])].sort();
  const release = `release_disks ${devices.map(shellQuote).join(" ")}`;
  const mountLines = ["echo 'disko: mounting under /mnt'", ...mounts.map((m) => m.command)];
  const script = [
    header,
    `# Wipes and formats only: ${devices.join(" ")}`,
    functions,
    ...checkDisks,
    ...names,
    `require_tools ${tools.join(" ")}`,
    ...(keyFiles(spec).length > 0 ? [`require_files ${keyFiles(spec).map(shellQuote).join(" ")}`] : []),
    `# Releases what is stacked on the disks, or stops here before a byte is written.`,
    release,
    `echo 'disko: partitioning and formatting ${devices.join(" ")}'`,
    ...all.create,
    ...mountLines,
    "",
  ].join("\n");
  const mountScript = [header, "# Mounts the layout under /mnt; wipes nothing; can run again.", functions, ...checkDisks, ...all.open, ...mountLines, ""].join("\n");
  // Without the layout's names: releasing creates nothing, so another disk's VG or LUKS volume of the same name is no obstacle.
  const releaseScript = [header, "# Unmounts and closes what is stacked on the layout's disks; wipes nothing.", functions, ...checkDisks, release, ""].join("\n");
  return {
    spec,
    hash,
    formatHash,
    mountHash,
    diskoNix: toDiskoNix(spec),
    script,
    mountScript,
    releaseScript,
    fileSystems: all.nixos.fileSystems,
    swapDevices: all.nixos.swapDevices,
    nixos: all.nixos,
    nixosModule: toNixosModule(all.nixos),
    tools,
    optionalTools: optional.filter((t) => !tools.includes(t)),
  };
}

/** Files the LUKS nodes format with (key, passphrase and additional key files). */
function keyFiles(spec: LayoutShape): string[] {
  const files = new Set<string>();
  forEachLuks(spec, (l) => {
    for (const f of [l.settings.keyFile, l.passwordFile, l.keyFile, ...l.additionalKeyFiles]) if (f) files.add(f);
  });
  return [...files].sort();
}

function forEachLuks(spec: LayoutShape, visit: (luks: Extract<Content, { type: "luks" }>) => void): void {
  const collect = (content: Content | null | undefined) => {
    for (const { node } of contentNodes(content, "")) if (node.type === "luks") visit(node);
  };
  for (const [key, disk] of Object.entries(spec.disk)) for (const p of normalizePartitions(key, disk.content)) collect(p.content);
  for (const vg of Object.values(spec.lvm_vg ?? {})) for (const lv of Object.values(vg.lvs)) collect(lv.content);
}

function luksNames(spec: LayoutShape): string[] {
  const names: string[] = [];
  forEachLuks(spec, (l) => names.push(l.name));
  return names;
}

function depth(mountpoint: string): number {
  return mountpoint === "/" ? 0 : mountpoint.split("/").length;
}
