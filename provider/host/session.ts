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

/**
 * The session, and the deploy lock's own connection when its pin is known before the first
 * handshake (`lockDial`; the lock then owns it), dialled while `meanwhile` runs (the local
 * build, the layout's rendering). A session that dropped during a long build is dialled
 * again; when anything fails, both connections are closed.
 */
export async function dialWhile(
  dial: () => Promise<SshSession>,
  lockDial: (() => Promise<SshSession>) | undefined,
  meanwhile: () => Promise<void>,
): Promise<{ session: SshSession; lockSession: Promise<SshSession> | undefined }> {
  const first = dial();
  const lockSession = lockDial?.();
  for (const dialling of [first, lockSession]) dialling?.catch(() => {});
  try {
    await meanwhile();
    const session = await first;
    return { session: session.isOpen ? session : await dial(), lockSession };
  } catch (err) {
    void first.then((s) => s.close(), () => {});
    void lockSession?.then((s) => s.close(), () => {});
    throw err;
  }
}
