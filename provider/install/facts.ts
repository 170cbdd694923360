import { NixosPulumiError } from "../errors";
import { refuseDeployerMachine } from "../host/deployer-machine";
import type { InstallContext, Phase } from "./context";

export interface MachineFacts {
  machineId: string;
  memoryMiB: number;
  isNixos: boolean;
  hasNix: boolean;
  missingTools: string[];
}

const TOOLS_FOR: Record<Phase, string[]> = {
  kexec: ["tar"],
  disko: ["sgdisk", "partx", "mkfs.ext4", "mkfs.vfat", "mount", "blkid"],
  install: ["nix-store", "chroot"],
  reboot: [],
};

/** Looks before touching anything: whose machine, how much memory, which tools. */
export async function gatherFacts(ctx: InstallContext, phases: Phase[]): Promise<MachineFacts> {
  const tools = [...new Set(phases.filter((p) => p !== "kexec").flatMap((p) => TOOLS_FOR[p]))];
  const out = await ctx.session.execOk(
    [
      'echo "machineId=$(cat /etc/machine-id 2>/dev/null)"',
      "echo \"memKiB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)\"",
      'if [ -e /etc/NIXOS ]; then echo nixos=1; else echo nixos=0; fi',
      'if command -v nix-store >/dev/null; then echo nix=1; else echo nix=0; fi',
      `for t in ${tools.join(" ")}; do command -v "$t" >/dev/null || echo "missing=$t"; done`,
    ].join("; "),
    "facts",
  );
  const lines = out.split("\n");
  const value = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1).trim() ?? "";
  const facts: MachineFacts = {
    machineId: value("machineId"),
    memoryMiB: Math.floor(Number(value("memKiB") || 0) / 1024),
    isNixos: value("nixos") === "1",
    hasNix: value("nix") === "1",
    missingTools: lines.filter((l) => l.startsWith("missing=")).map((l) => l.slice(8)),
  };
  await refuseDeployerMachine(facts, ctx.spec.connection.host);
  ctx.progress(`facts: ${facts.memoryMiB} MiB memory, ${facts.isNixos ? "NixOS" : "not NixOS"}, nix ${facts.hasNix ? "present" : "absent"}`);
  if (phases.includes("kexec") && facts.memoryMiB > 0 && facts.memoryMiB < 1000) {
    throw new NixosPulumiError(`the machine has ${facts.memoryMiB} MiB of memory; the kexec installer runs from RAM and needs about 1 GiB`, {
      step: "facts",
      host: ctx.spec.connection.host,
      hint: "give the VM more memory for the install, or boot it into an installer yourself and leave \"kexec\" out of install.phases",
    });
  }
  if (!phases.includes("kexec") && facts.missingTools.length > 0) {
    throw new NixosPulumiError(`the machine lacks ${facts.missingTools.join(", ")}, needed by the ${phases.join("/")} phases`, {
      step: "facts",
      host: ctx.spec.connection.host,
      hint: 'run the install from an installer that has them, or include "kexec" in install.phases to boot one',
    });
  }
  return facts;
}
