import type { z } from "zod";
import { btrfsIssues } from "./btrfs";
import { contentNodes, type Content } from "./content";
import { diskName } from "./disk";
import { diskGeometryIssue } from "./geometry";
import { MIN_BYTES } from "./filesystem";
import { vgName } from "./lvm-vg";
import { normalizePartitions } from "./gpt";
import { nodevMountpoint } from "./nodev";
import type { LayoutShape } from "./schema";
import { sizeBytes } from "./size";

type Issue = { path: (string | number)[]; message: string };

/** Rules across nodes that no single node's schema can check. */
export function layoutIssues(layout: LayoutShape): Issue[] {
  const issues: Issue[] = [];
  const mountpoints = new Map<string, string>();
  const labels = new Map<string, string>();
  const devices = new Map<string, string>();
  const mappers = new Map<string, string>();
  const pvGroups = new Set<string>();
  const vgNames = new Set(Object.entries(layout.lvm_vg ?? {}).map(([key, vg]) => vgName(key, vg)));

  const useMountpoint = (mp: string | null | undefined, path: (string | number)[]) => {
    if (!mp) return;
    const seen = mountpoints.get(mp);
    if (seen) issues.push({ path, message: `mountpoint ${mp} is already used by ${seen}; each mountpoint appears once` });
    else mountpoints.set(mp, path.join("."));
  };
  const walkContent = (content: Content | null | undefined, base: (string | number)[], sizeOf?: number) => {
    for (const { node, path } of contentNodes(content, base.join("."))) {
      const at = path.split(".");
      if (node.type === "filesystem" || node.type === "btrfs") {
        const format = node.type === "btrfs" ? "btrfs" : node.format;
        useMountpoint(node.mountpoint, [...at, "mountpoint"]);
        const min = MIN_BYTES[format] ?? 0;
        if (sizeOf !== undefined && sizeOf < min) {
          issues.push({ path: [...base.slice(0, -1), "size"], message: `${format} needs at least ${min / 1024 ** 2} MiB; make this partition bigger` });
        }
      }
      if (node.type === "btrfs") {
        for (const [name, sub] of Object.entries(node.subvolumes)) useMountpoint(sub.mountpoint, [...at, "subvolumes", name, "mountpoint"]);
        for (const issue of btrfsIssues(node)) issues.push({ path: [...at, ...issue.path], message: issue.message });
      }
      if (node.type === "luks") {
        const seen = mappers.get(node.name);
        if (seen) issues.push({ path: [...at, "name"], message: `the mapper name ${node.name} is also used by ${seen}` });
        else mappers.set(node.name, path);
      }
      if (node.type === "lvm_pv") {
        pvGroups.add(node.vg);
        if (!vgNames.has(node.vg)) issues.push({ path: [...at, "vg"], message: `there is no lvm_vg "${node.vg}"; declare it under lvm_vg` });
      }
    }
  };

  for (const [key, disk] of Object.entries(layout.disk)) {
    const issuesBefore = issues.length;
    const seenDevice = devices.get(disk.device);
    if (seenDevice) issues.push({ path: ["disk", key, "device"], message: `${disk.device} is also disk "${seenDevice}"` });
    devices.set(disk.device, key);
    const partitions = normalizePartitions(diskName(key, disk), disk.content);
    const rest = partitions.filter((p) => p.end === "-0");
    for (const p of rest.slice(1)) {
      issues.push({
        path: ["disk", key, "content", "partitions", p.key, "size"],
        message: `only one partition per disk can take "100%" (the rest of the disk); ${rest[0]!.key} already does`,
      });
    }
    for (const p of partitions) {
      const base = ["disk", key, "content", "partitions", p.key];
      if (p.end === "+0") issues.push({ path: [...base, "size"], message: 'give the partition a size, e.g. "512M" or "100%" (or an end, e.g. "-1G")' });
      const seenLabel = labels.get(p.label);
      if (seenLabel) issues.push({ path: [...base, "label"], message: `label ${p.label} is also used by ${seenLabel}` });
      labels.set(p.label, base.join("."));
      walkContent(p.content, [...base, "content"], p.end.startsWith("+") && p.start === "0" ? sizeBytes(p.size) : undefined);
    }
    // Only a table the per-partition rules accept is placed: its failures would repeat theirs.
    const geometry = issues.length === issuesBefore ? diskGeometryIssue(key, disk) : undefined;
    if (geometry) issues.push({ path: ["disk", key, "content", "partitions", geometry.key, geometry.field], message: geometry.message });
  }
  for (const [key, vg] of Object.entries(layout.lvm_vg ?? {})) {
    const name = vgName(key, vg);
    if (!pvGroups.has(name)) issues.push({ path: ["lvm_vg", key], message: `no partition has content { type: "lvm_pv", vg: "${name}" }` });
    for (const [lvName, lv] of Object.entries(vg.lvs)) walkContent(lv.content, ["lvm_vg", key, "lvs", lvName, "content"], sizeBytes(lv.size));
  }
  for (const [key, node] of Object.entries(layout.nodev ?? {})) useMountpoint(nodevMountpoint(key, node), ["nodev", key, "mountpoint"]);
  // No "/" is fine for a DiskLayout (data disks, as in disko); an install needs one (installRootIssue).
  return issues;
}

export function addLayoutIssues(layout: LayoutShape, ctx: z.RefinementCtx): void {
  for (const issue of layoutIssues(layout)) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
}
