// The tree walk: disks (by name) and their partitions (by priority), then volume groups;
// each node module renders itself; this file orders the pieces into the scripts.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { canonicalJson, sha256Hex } from "../util/canonical-json";
import { shellQuote } from "../util/shell-quote";
import { renderDisk } from "./disk";
import { renderLvmVg } from "./lvm-vg";
import { emptyRendered, merge, type FileSystemConfig } from "./node";
import type { LayoutShape } from "./schema";
import { toDiskoNix } from "./disko-nix";

export interface RenderedLayout {
  spec: LayoutShape;
  hash: string;
  diskoNix: string;
  /** Wipes, partitions and formats the named disks only, then mounts everything under /mnt. */
  script: string;
  /** Mounts an existing layout under /mnt (opens LUKS, activates VGs), wiping nothing. */
  mountScript: string;
  fileSystems: Record<string, FileSystemConfig>;
  swapDevices: { device: string }[];
}

function preamble(): string {
  return readFileSync(path.resolve(__dirname, "../../../provider/disk/script-preamble.sh"), "utf8");
}

export function renderLayout(spec: LayoutShape): RenderedLayout {
  const hash = sha256Hex(canonicalJson(spec));
  const pvs = new Map<string, string[]>();
  const addPv = (vg: string, device: string) => pvs.set(vg, [...(pvs.get(vg) ?? []), device]);
  const all = emptyRendered();
  const diskNames = Object.keys(spec.disk).sort();
  for (const name of diskNames) merge(all, renderDisk(name, spec.disk[name]!, addPv));
  for (const name of Object.keys(spec.lvm_vg ?? {}).sort()) merge(all, renderLvmVg(name, spec.lvm_vg![name]!, pvs.get(name) ?? [], addPv));

  const mounts = [...all.mounts].sort((a, b) => depth(a.mountpoint) - depth(b.mountpoint) || a.mountpoint.localeCompare(b.mountpoint));
  const devices = diskNames.map((n) => spec.disk[n]!.device);
  const header = `#!/bin/sh\n# nixos-pulumi DiskLayout ${hash.slice(0, 16)}`;
  const checkDisks = devices.map((d) => `[ -b ${shellQuote(d)} ] || { echo "disk ${d} is not a block device on this machine" >&2; exit 1; }`);
  const mountLines = ["echo 'disko: mounting under /mnt'", ...mounts.map((m) => m.command)];
  const script = [
    header,
    `# Wipes and formats only: ${devices.join(" ")}`,
    preamble(),
    ...checkDisks,
    `echo 'disko: partitioning and formatting ${devices.join(" ")}'`,
    ...all.create,
    ...mountLines,
    "",
  ].join("\n");
  const mountScript = [header, "# Mounts the layout under /mnt; wipes nothing.", preamble(), ...checkDisks, ...(all.open ?? []), ...mountLines, ""].join("\n");
  return { spec, hash, diskoNix: toDiskoNix(spec), script, mountScript, fileSystems: all.fileSystems, swapDevices: all.swapDevices };
}

function depth(mountpoint: string): number {
  return mountpoint === "/" ? 0 : mountpoint.split("/").length;
}
