import type { Progress } from "../progress";
import type { NixosHostSpec } from "../schema/nixos-host";
import { connect, type SshSession } from "../ssh";

/**
 * A session to the host, pinned to connection.hostKey or else to the key recorded in state.
 * `deadlineSeconds` for a machine expected to come back (sshd restarted by an activation).
 */
export function openSession(spec: NixosHostSpec, pinnedHostKey: string | undefined, progress: Progress, deadlineSeconds?: number): Promise<SshSession> {
  return connect(spec.connection, { pinnedHostKey, log: progress, ...(deadlineSeconds ? { deadlineSeconds } : {}) });
}
