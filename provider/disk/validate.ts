import type { z } from "zod";
import { contentNodes } from "./content";
import { MIN_BYTES } from "./filesystem";
import { normalizePartitions } from "./gpt";
import type { LayoutShape } from "./schema";
import { sizeBytes } from "./size";

type Issue = { path: (string | number)[]; message: string };

/** Rules across nodes that no single node's schema can check. */
export function layoutIssues(layout: LayoutShape): Issue[] {
  const issues: Issue[] = [];
  const mountpoints = new Map<string, string>();
  const labels = new Map<string, string>();
  const devices = new Map<string, string>();
  const pvGroups = new Set<string>();

  const useMountpoint = (mp: string | undefined, path: (string | number)[]) => {
    if (!mp) return;
    const seen = mountpoints.get(mp);
    if (seen) issues.push({ path, message: `mountpoint ${mp} is already used by ${seen}; each mountpoint appears once` });
    else mountpoints.set(mp, path.join("."));
  };
  const walkContent = (content: Parameters<typeof contentNodes>[0], base: (string | number)[], sizeOf?: number) => {
    for (const { node, path } of contentNodes(content, base.join("."))) {
      const at = path.split(".");
      if (node.type === "filesystem") {
        useMountpoint(node.mountpoint, [...at, "mountpoint"]);
        for (const [name, sub] of Object.entries(node.subvolumes)) useMountpoint(sub.mountpoint, [...at, "subvolumes", name, "mountpoint"]);
        const min = MIN_BYTES[node.format] ?? 0;
        if (sizeOf !== undefined && sizeOf < min) {
          issues.push({ path: [...base.slice(0, -1), "size"], message: `${node.format} needs at least ${min / 1024 ** 2} MiB; make this partition bigger` });
        }
      }
      if (node.type === "lvm_pv") {
        pvGroups.add(node.vg);
        if (!layout.lvm_vg?.[node.vg]) issues.push({ path: [...at, "vg"], message: `there is no lvm_vg "${node.vg}"; declare it under lvm_vg` });
      }
    }
  };

  for (const [diskName, disk] of Object.entries(layout.disk)) {
    const seenDevice = devices.get(disk.device);
    if (seenDevice) issues.push({ path: ["disk", diskName, "device"], message: `${disk.device} is also disk "${seenDevice}"` });
    devices.set(disk.device, diskName);
    const partitions = normalizePartitions(diskName, disk.content);
    const rest = partitions.filter((p) => p.size === "100%");
    if (rest.length > 1) {
      for (const p of rest.slice(1)) {
        issues.push({
          path: ["disk", diskName, "content", "partitions", p.name, "size"],
          message: `only one partition per disk can take "100%" (the rest of the disk); ${rest[0]!.name} already does`,
        });
      }
    }
    for (const p of partitions) {
      const base = ["disk", diskName, "content", "partitions", p.name];
      if (p.size === "0") issues.push({ path: [...base, "size"], message: 'give the partition a size, e.g. "512M" or "100%"' });
      const seenLabel = labels.get(p.label);
      if (seenLabel) issues.push({ path: [...base, "label"], message: `label ${p.label} is also used by ${seenLabel}` });
      labels.set(p.label, base.join("."));
      walkContent(p.content, [...base, "content"], sizeBytes(p.size));
    }
  }
  for (const [vgName, vg] of Object.entries(layout.lvm_vg ?? {})) {
    if (!pvGroups.has(vgName)) issues.push({ path: ["lvm_vg", vgName], message: `no partition has content { type: "lvm_pv", vg: "${vgName}" }` });
    for (const [lvName, lv] of Object.entries(vg.lvs)) walkContent(lv.content, ["lvm_vg", vgName, "lvs", lvName, "content"], sizeBytes(lv.size));
  }
  if (!mountpoints.has("/")) issues.push({ path: ["disk"], message: 'no filesystem is mounted at "/"; give one partition or LV content { type: "filesystem", mountpoint: "/" }' });
  return issues;
}

export function addLayoutIssues(layout: LayoutShape, ctx: z.RefinementCtx): void {
  for (const issue of layoutIssues(layout)) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
}
