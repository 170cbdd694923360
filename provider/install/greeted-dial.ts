import type { Connection } from "../schema/connection";
import { NoSshGreeting, sshGreetingSoon, type SshSession } from "../ssh";

/**
 * Each attempt of a wait for a machine coming back probes for its SSH greeting for this long,
 * a fresh TCP connection every GREETING_PROBE_EVERY_MS.
 */
export const GREETING_WINDOW_MS = 5000;
export const GREETING_PROBE_EVERY_MS = 1000;
/** Every this many attempts one is a full dial without a probe (a very slow sshd still gets in). */
const FULL_DIAL_EVERY = 4;

/**
 * The dial of a wait loop (kexec, reboot): before each full SSH dial (which may wait
 * connection.perDialTimeout, 15 s, on a connection that a booting machine, or the NAT or
 * hypervisor in front of it, accepted and never answers) short probes check that the
 * machine's sshd greets, a new one every second (sshGreetingSoon), so the machine is seen
 * within about a second of its sshd starting; nixos-anywhere polls with
 * `ssh -o ConnectTimeout=10` every 5 s. Through a jump host there is no probe (the jump host
 * would dial for it).
 */
export function greetedDial(connection: Connection, dial: () => Promise<SshSession>): () => Promise<SshSession> {
  let attempts = 0;
  return async () => {
    attempts++;
    if (!connection.proxy && attempts % FULL_DIAL_EVERY !== 0) {
      const probe = await sshGreetingSoon(connection.host, connection.port, { windowMs: GREETING_WINDOW_MS, everyMs: GREETING_PROBE_EVERY_MS });
      if (!probe.greeted) throw new NoSshGreeting(`${connection.host}:${connection.port}: ${probe.reason} (probe before dialling)`);
    }
    return dial();
  };
}
