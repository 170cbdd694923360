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
 * The nixos-images installer carries only authorized keys (root's and $SUDO_USER's) into
 * /root/.ssh and listens as root on port 22. A user who logs in as root with a key keeps
 * using it (on `port`, install.postKexecSshPort); anyone else (a password, a sudo user) gets a temporary key authorized for root
 * before kexec, generated here and never written to disk or state.
 */
export async function ensureRootKeyLogin(session: SshSession, connection: Connection, progress: Progress, port = 22): Promise<RootAccess> {
  const root: Connection = { ...connection, user: "root", port, sudo: false, sudoPassword: undefined, password: undefined };
  const usesKey = connection.privateKey !== undefined || connection.agentSocketPath !== undefined || (!connection.password && !!process.env["SSH_AUTH_SOCK"]);
  if (connection.user === "root" && usesKey) return { connection: root, revoke: async () => {} };

  const pair = sshUtils.generateKeyPairSync("ed25519", { comment: MARK });
  const publicKey = pair.public.trim();
  progress(`kexec: authorizing a temporary key for root, so the installer (which takes only keys) lets the provider in`);
  await session.execOk(
    guarded(`np_private_dir /root/.ssh && printf '%s\\n' '${publicKey}' >> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys`),
    "kexec: authorize key",
  );
  return {
    connection: { ...root, privateKey: pair.private, privateKeyPassword: undefined, agentSocketPath: undefined },
    revoke: async (s) => {
      await s.exec(`sed -i '/ ${MARK}$/d' /root/.ssh/authorized_keys`);
    },
  };
}
