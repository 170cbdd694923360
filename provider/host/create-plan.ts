import { diskName, normalizePartitions, type RenderedLayout } from "../disk";
import { INSTALL_PHASES } from "../schema/nixos-host";
import { containsUnknown } from "../util/unknown";

/**
 * The lines a preview prints for a host that will be created: an adopt (a switch, nothing
 * wiped) or an install (kexec, the disks wiped, by device and partition sizes, install, reboot).
 * `layout` is the host's rendered DiskLayout, when it has one.
 */
export function explainHostCreate(news: Record<string, unknown>, layout: RenderedLayout | undefined): string[] {
  const toplevel = show(news["toplevel"]);
  const install = news["install"] as { phases?: unknown } | undefined;
  if (news["diskLayout"] === undefined && install === undefined) {
    return [`adopt: the machine must already run NixOS; switches it to ${toplevel} unless it runs it already. Nothing is wiped: no kexec, no disk is touched`];
  }
  const phases = Array.isArray(install?.phases) ? (install.phases as string[]) : INSTALL_PHASES;
  const steps: string[] = [];
  steps.push(phases.includes("kexec")
    ? "kexec into the NixOS installer (skipped if the machine already runs it)"
    : "no kexec (install.phases: the machine must already run the NixOS installer)");
  if (!phases.includes("disko")) steps.push("nothing is wiped (no disko phase: installs onto what is mounted at /mnt)");
  else steps.push(`wipes ${wipedDisks(news["diskLayout"], layout)}`);
  if (phases.includes("install")) steps.push(`installs ${toplevel}`);
  steps.push(phases.includes("reboot") ? "reboots into it" : "no reboot");
  const named = phases.join(", ") === INSTALL_PHASES.join(", ") ? "install" : `install (phases ${phases.join(", ")})`;
  return [`${named}: ${steps.join(", then ")}`];
}

/** "/dev/vda (GPT: ESP 512M, root the rest of the disk)", per disk the layout formats. */
function wipedDisks(declared: unknown, layout: RenderedLayout | undefined): string {
  if (containsUnknown(declared) || !layout) return "the disks of its layout (not known until the update runs)";
  if (layout.diskoScript) return `the disks its disko script formats (${layout.diskoScript.storePath})`;
  const disks = Object.entries(layout.spec.disk).map(([key, disk]) => {
    const parts = normalizePartitions(diskName(key, disk), disk.content).map((p) => `${p.name} ${partitionSize(p)}`);
    return `${disk.device} (GPT: ${parts.join(", ")})`;
  });
  return disks.length > 0 ? disks.join(" and ") : "no disk";
}

function partitionSize(p: { size: string; start: string; end: string }): string {
  if (p.end === "-0") return "the rest of the disk";
  if (p.end.startsWith("+")) return p.end.slice(1);
  if (p.end.startsWith("-")) return `up to ${p.end.slice(1)} before the end`;
  return `${p.start} to ${p.end}`;
}

function show(value: unknown): string {
  if (containsUnknown(value)) return "(a system not known until the update runs)";
  return typeof value === "string" && value ? value : "(none)";
}
