import { shellQuote, type SshSession } from "../ssh";
import { OWNER_RECORD } from "./owner-record";

export interface HostState {
  isNixos: boolean;
  currentSystem: string;
  bootedSystem: string;
  /** What the system profile points to (the boot default). */
  profileSystem: string;
  generation: number;
  /** The kernel the machine runs: /run/booted-system's, not the current system's. */
  kernel: string;
  machineId: string;
  bootId: string;
  /** VARIANT_ID of /etc/os-release ("installer" in NixOS's installer). */
  variantId: string;
  /** Kernel, initrd, kernel modules or init interface of `compareWith` differ from the booted system's. */
  needsReboot: boolean;
  /** The first line of the owner record: which stack and resource manage the machine ("" when none). */
  owner: string;
}

// A path only when it exists: `readlink -f` of a missing link prints the link's own path.
const resolved = (p: string) => `$([ -e ${p} ] && readlink -f ${p})`;
const BOOT_FILES = ["kernel", "initrd", "kernel-modules"];

function readState(compareWith?: string): string {
  const lines = [
    `echo "current=${resolved("/run/current-system")}"`,
    `echo "booted=${resolved("/run/booted-system")}"`,
    `echo "profileSystem=${resolved("/nix/var/nix/profiles/system")}"`,
    'echo "profile=$(readlink /nix/var/nix/profiles/system 2>/dev/null)"',
    `echo "kernel=${resolved("/run/booted-system/kernel")}"`,
    'echo "machineId=$(cat /etc/machine-id 2>/dev/null)"',
    'echo "bootId=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"',
    "echo \"variant=$(sed -n 's/^VARIANT_ID=\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}$/\\1/p' /etc/os-release 2>/dev/null)\"",
    `echo "owner=$(head -n 1 ${OWNER_RECORD} 2>/dev/null)"`,
    'if [ -e /etc/NIXOS ] || [ -L /run/current-system ]; then echo nixos=1; else echo nixos=0; fi',
  ];
  if (compareWith) {
    // As NixOS users check by hand: does the new system boot another kernel, initrd or module set?
    const q = shellQuote(compareWith);
    const checks = [
      ...BOOT_FILES.map((f) => `[ "${resolved(`/run/booted-system/${f}`)}" = "${resolved(`${q}/${f}`)}" ]`),
      // switch-to-configuration refuses to activate across init interfaces (exit 100).
      `[ "$(cat /run/booted-system/init-interface-version 2>/dev/null)" = "$(cat ${q}/init-interface-version 2>/dev/null)" ]`,
    ].join(" && ");
    lines.push(`if [ -e /run/booted-system ] && ! { ${checks}; }; then echo reboot=1; else echo reboot=0; fi`);
  }
  return lines.join("; ");
}

/** What the machine runs, in one command; with `compareWith`, whether booting it needs a reboot. */
export async function readHostState(session: SshSession, compareWith?: string): Promise<HostState> {
  const out = await session.execOk(readState(compareWith), "read state");
  const v: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) v[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  return {
    isNixos: v["nixos"] === "1",
    currentSystem: v["current"] ?? "",
    bootedSystem: v["booted"] ?? "",
    profileSystem: v["profileSystem"] ?? "",
    generation: Number(/^system-(\d+)-link$/.exec(v["profile"] ?? "")?.[1] ?? 0),
    kernel: v["kernel"] ?? "",
    machineId: v["machineId"] ?? "",
    bootId: v["bootId"] ?? "",
    variantId: v["variant"] ?? "",
    needsReboot: v["reboot"] === "1",
    owner: v["owner"] ?? "",
  };
}
