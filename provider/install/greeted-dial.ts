import type { Connection } from "../schema/connection";
import { sshGreetingWithin, type SshSession } from "../ssh";

/** How long a probe waits for the SSH greeting of a machine coming back. */
export const GREETING_PROBE_MS = 5000;
/** Every this many attempts one is a full dial without a probe (a very slow sshd still gets in). */
const FULL_DIAL_EVERY = 4;

/**
 * The dial of a wait loop (kexec, reboot): before each full SSH dial (which may wait
 * connection.perDialTimeout, 15 s, on a connection that a booting machine, or the NAT or
 * hypervisor in front of it, accepted and never answers) a short probe checks that the
 * machine's sshd greets. The loop then polls every few seconds with one TCP connection per
 * attempt, as nixos-anywhere polls with `ssh -o ConnectTimeout=10` every 5 s. Through a jump
 * host there is no probe (the jump host would dial for it).
 */
export function greetedDial(connection: Connection, dial: () => Promise<SshSession>): () => Promise<SshSession> {
  let attempts = 0;
  return async () => {
    attempts++;
    if (!connection.proxy && attempts % FULL_DIAL_EVERY !== 0) {
      const probe = await sshGreetingWithin(connection.host, connection.port, GREETING_PROBE_MS);
      if (!probe.greeted) throw new Error(`${connection.host}:${connection.port}: ${probe.reason} (probe before dialling)`);
    }
    return dial();
  };
}
