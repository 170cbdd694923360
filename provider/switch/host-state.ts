import type { SshSession } from "../ssh";

export interface HostState {
  isNixos: boolean;
  currentSystem: string;
  bootedSystem: string;
  generation: number;
  kernel: string;
  machineId: string;
  bootId: string;
}

const READ_STATE = [
  'echo "current=$(readlink -f /run/current-system 2>/dev/null)"',
  'echo "booted=$([ -e /run/booted-system ] && readlink -f /run/booted-system 2>/dev/null)"',
  'echo "profile=$(readlink /nix/var/nix/profiles/system 2>/dev/null)"',
  'echo "kernel=$(readlink -f /run/current-system/kernel 2>/dev/null)"',
  'echo "machineId=$(cat /etc/machine-id 2>/dev/null)"',
  'echo "bootId=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"',
  'if [ -e /etc/NIXOS ] || [ -L /run/current-system ]; then echo nixos=1; else echo nixos=0; fi',
].join("; ");

/** What the machine runs, in one command. */
export async function readHostState(session: SshSession): Promise<HostState> {
  const out = await session.execOk(READ_STATE, "read state");
  const v: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) v[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  return {
    isNixos: v["nixos"] === "1",
    currentSystem: v["current"] ?? "",
    bootedSystem: v["booted"] ?? "",
    generation: Number(/^system-(\d+)-link$/.exec(v["profile"] ?? "")?.[1] ?? 0),
    kernel: v["kernel"] ?? "",
    machineId: v["machineId"] ?? "",
    bootId: v["bootId"] ?? "",
  };
}
