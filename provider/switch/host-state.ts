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

// Run by the target's shell with as few processes as it can: on a busy machine each one
// costs 10-30 ms, and this is read before and after every switch. np_resolve: a path only
// when it exists (`readlink -f` of a missing link prints the link's own path), a directory
// resolved by the shell itself (cd -P); np_line: a file's first line, by the shell's read.
const HELPERS = [
  'np_resolve() { np_r=""; if [ -d "$1" ] && cd -P "$1" 2>/dev/null; then np_r=$PWD; elif [ -e "$1" ]; then np_r=$(readlink -f "$1"); fi; }',
  'np_line() { np_l=""; { IFS= read -r np_l || [ -n "$np_l" ]; } 2>/dev/null < "$1"; }',
  // Both missing, or both there and the same file (as `readlink -f` of each would agree, or a
  // hard link of the same content in an optimised store: it boots the same).
  'np_same() { { [ ! -e "$1" ] && [ ! -e "$2" ]; } || [ "$1" -ef "$2" ]; }',
];
const BOOT_FILES = ["kernel", "initrd", "kernel-modules"];

/** The command that prints the machine's state (parseHostState reads it); read-only. */
export function stateCommand(compareWith?: string): string {
  const lines = [
    ...HELPERS,
    `np_resolve /run/current-system; printf 'current=%s\\n' "$np_r"`,
    `np_resolve /run/booted-system; printf 'booted=%s\\n' "$np_r"`,
    `np_resolve /nix/var/nix/profiles/system; printf 'profileSystem=%s\\n' "$np_r"`,
    `printf 'profile=%s\\n' "$(readlink /nix/var/nix/profiles/system 2>/dev/null)"`,
    `np_resolve /run/booted-system/kernel; printf 'kernel=%s\\n' "$np_r"`,
    `np_line /etc/machine-id; printf 'machineId=%s\\n' "$np_l"`,
    `np_line /proc/sys/kernel/random/boot_id; printf 'bootId=%s\\n' "$np_l"`,
    // The first VARIANT_ID line, its value unquoted (one without inner quotes only).
    `np_v=""; np_found=""`,
    `{ while IFS= read -r np_x || [ -n "$np_x" ]; do case "$np_x" in VARIANT_ID=*) np_x=\${np_x#VARIANT_ID=}; np_x=\${np_x#\\"}; np_x=\${np_x%\\"}; case "$np_x" in *\\"*) ;; *) [ -n "$np_found" ] || { np_v=$np_x; np_found=1; } ;; esac ;; esac; np_x=""; done < /etc/os-release; } 2>/dev/null`,
    `printf 'variant=%s\\n' "$np_v"`,
    `np_line ${OWNER_RECORD}; printf 'owner=%s\\n' "$np_l"`,
    'if [ -e /etc/NIXOS ] || [ -L /run/current-system ]; then echo nixos=1; else echo nixos=0; fi',
  ];
  if (compareWith) {
    // As NixOS users check by hand: does the new system boot another kernel, initrd or module set?
    const q = shellQuote(compareWith);
    const checks = [
      ...BOOT_FILES.map((f) => `np_same /run/booted-system/${f} ${q}/${f}`),
      // switch-to-configuration refuses to activate across init interfaces (exit 100).
      `{ np_line /run/booted-system/init-interface-version; np_i=$np_l; np_line ${q}/init-interface-version; [ "$np_i" = "$np_l" ]; }`,
    ].join(" && ");
    lines.push(`if [ -e /run/booted-system ] && ! { ${checks}; }; then echo reboot=1; else echo reboot=0; fi`);
  }
  return lines.join("\n");
}

/** What the machine runs, in one command; with `compareWith`, whether booting it needs a reboot. */
export async function readHostState(session: SshSession, compareWith?: string): Promise<HostState> {
  return parseHostState(await session.execOk(stateCommand(compareWith), "read state"));
}

/** What stateCommand printed. */
export function parseHostState(out: string): HostState {
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
