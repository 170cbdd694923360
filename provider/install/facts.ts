import { NixosPulumiError } from "../errors";
import { refuseDeployerMachine } from "./deployer-machine";
import { readHostState, type HostState } from "../switch";
import type { InstallContext, Phase } from "./context";
import { refuseLayoutThatDoesNotFit } from "./disk-fit";

export interface MachineFacts {
  machineId: string;
  memoryMiB: number;
  isNixos: boolean;
  hasNix: boolean;
  missingTools: string[];
  /** VARIANT_ID of /etc/os-release: "installer" in NixOS's (kexec) installer. */
  variantId: string;
}

// What each phase runs on the machine. kexec/run needs tar, cpio and setsid (nixos-anywhere
// checks the same); the other phases run in the installer.
// A busybox shell names its applets without a path: present. A file that cannot run is missing.
const TOOLS_FOR: Record<Phase, string[]> = {
  kexec: ["tar", "cpio", "setsid"],
  disko: ["sgdisk", "partx", "mkfs.ext4", "mkfs.vfat", "mount", "blkid"],
  install: ["nix-store", "nixos-install", "nixos-enter"],
  reboot: [],
};

function toolsNeeded(phases: Phase[], inInstaller: boolean, tarball: string | undefined): string[] {
  const kexecs = phases.includes("kexec") && !inInstaller;
  const now = kexecs ? ["kexec" as Phase] : phases.filter((p) => p !== "kexec");
  const tools = now.flatMap((p) => TOOLS_FOR[p]);
  if (kexecs) tools.push(tarball?.endsWith(".zst") ? "zstd" : "gzip");
  return [...new Set(tools)];
}

/**
 * Looks before touching anything: whose machine, how much memory, which tools. `state`: the
 * machine's state when the caller just read it (under the deploy lock), else read here.
 */
export async function gatherFacts(ctx: InstallContext, phases: Phase[], state?: HostState): Promise<MachineFacts> {
  const { variantId } = state ?? (await readHostState(ctx.session));
  const tools = toolsNeeded(phases, variantId === "installer", ctx.spec.install?.kexecTarball);
  const out = await ctx.session.execOk(
    [
      'echo "machineId=$(cat /etc/machine-id 2>/dev/null)"',
      "echo \"memKiB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)\"",
      'if [ -e /etc/NIXOS ]; then echo nixos=1; else echo nixos=0; fi',
      'if command -v nix-store >/dev/null; then echo nix=1; else echo nix=0; fi',
      `for t in ${tools.join(" ")}; do p=$(command -v "$t") && case "$p" in /*) [ -x "$p" ] ;; esac || echo "missing=$t"; done`,
      // kexec/run is run under `setsid --wait`: busybox's setsid has no --wait (nixos-anywhere checks the same).
      ...(tools.includes("setsid") ? [`if command -v setsid >/dev/null && ! setsid --wait true </dev/null >/dev/null 2>&1; then echo "missing=setsid --wait (util-linux's setsid; this one has no --wait)"; fi`] : []),
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
    variantId,
  };
  await refuseDeployerMachine(facts, ctx.spec.connection.host);
  const what = variantId === "installer" ? "the NixOS installer" : facts.isNixos ? "NixOS" : "not NixOS";
  ctx.progress(`facts: ${facts.memoryMiB} MiB memory, ${what}, nix ${facts.hasNix ? "present" : "absent"}`);
  const kexecs = phases.includes("kexec") && variantId !== "installer";
  if (kexecs && facts.memoryMiB > 0 && facts.memoryMiB < 1000) {
    throw new NixosPulumiError(`the machine has ${facts.memoryMiB} MiB of memory; the kexec installer runs from RAM and needs about 1 GiB`, {
      step: "facts",
      host: ctx.spec.connection.host,
      hint: "give the VM more memory for the install, or boot it into an installer yourself and leave \"kexec\" out of install.phases",
    });
  }
  if (facts.missingTools.length > 0) {
    throw new NixosPulumiError(`the machine lacks ${facts.missingTools.join(", ")}, needed by the ${kexecs ? "kexec" : phases.join("/")} phase${kexecs ? "" : "s"}; nothing was changed`, {
      step: "facts",
      host: ctx.spec.connection.host,
      hint: kexecs
        ? "install them on the machine (e.g. apt-get install cpio util-linux), or boot it into a NixOS installer yourself and leave \"kexec\" out of install.phases"
        : 'run the install from the NixOS installer (it has them), or include "kexec" in install.phases to boot one',
    });
  }
  // Before a kexec too: a layout that cannot fit is refused before the machine is rebooted into anything.
  if (phases.includes("disko")) await refuseLayoutThatDoesNotFit(ctx, "facts", variantId === "installer");
  return facts;
}
