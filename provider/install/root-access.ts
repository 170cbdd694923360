import { utils as sshUtils } from "ssh2";
import type { Connection } from "../schema/connection";
import type { Progress } from "../progress";
import type { SshSession } from "../ssh";
import { guarded } from "../ssh/private-paths";

/** How the provider logs in as root after kexec: the installer takes only authorized keys. */
export interface RootAccess {
  connection: Connection;
  /** Removes the temporary key again (when the kexec did not happen). */
  revoke(session: SshSession): Promise<void>;
}

const MARK = "nixos-pulumi-kexec";

/**
 * The nixos-images installer carries only authorized_keys files (root's and $SUDO_USER's)
 * into /root/.ssh and listens as root on `port` (install.postKexecSshPort, 22). Whoever logs
 * in, and however the rescue system authorizes them (a password, a sudo user, root's key
 * through an AuthorizedKeysCommand), gets a temporary key authorized for root before kexec,
 * as nixos-anywhere always runs ssh-copy-id: generated here, never written to disk or state.
 */
export async function ensureRootKeyLogin(session: SshSession, connection: Connection, progress: Progress, port = 22): Promise<RootAccess> {
  const root: Connection = { ...connection, user: "root", port, sudo: false, sudoPassword: undefined, password: undefined };
  const pair = sshUtils.generateKeyPairSync("ed25519", { comment: MARK });
  const publicKey = pair.public.trim();
  progress(`kexec: authorizing a temporary key for root, so the installer (which takes only keys) lets the provider in`);
  await session.execOk(
    guarded(
      // A last line without its newline would swallow the appended key (and break its own).
      `np_private_dir /root/.ssh && f=/root/.ssh/authorized_keys && { [ ! -s $f ] || [ -z "$(tail -c 1 $f)" ] || echo >> $f; } && ` +
        `printf '%s\\n' '${publicKey}' >> $f && chmod 600 $f`,
    ),
    "kexec: authorize key",
  );
  return {
    connection: { ...root, privateKey: pair.private, privateKeyPassword: undefined, agentSocketPath: undefined },
    revoke: async (s) => {
      await s.exec(`sed -i '/ ${MARK}$/d' /root/.ssh/authorized_keys`);
    },
  };
}
