import type { RenderedLayout } from "../disk";
import type { Progress } from "../progress";
import type { Connection } from "../schema/connection";
import type { InstallPhase, NixosHostSpec } from "../schema/nixos-host";
import type { SshSession } from "../ssh";
import type { DeployLock } from "../lock/deploy-lock";

export type Phase = InstallPhase;

/** What every install phase works with; `session` is replaced when a phase reconnects. */
export interface InstallContext {
  spec: NixosHostSpec;
  toplevel: string;
  layout: RenderedLayout | undefined;
  progress: Progress;
  session: SshSession;
  /**
   * Opens a new session to `connection` (default: the machine as declared); `hostKey` pins
   * it, undefined accepts (and logs) whatever key is shown.
   */
  connect(hostKey: string | undefined, connection?: Connection): Promise<SshSession>;
  /** The machine's deploy lock, confirmed before each phase and taken again after the kexec. */
  lock?: DeployLock;
  /**
   * The public ed25519 host key the install phase wrote into the new system (given in
   * install.hostKeys or generated): what the installed system presents on its first boot.
   */
  installedHostKey?: string;
}

/**
 * The host key the installed system will present: the one the install phase wrote, else
 * (no install phase in this run) the pre-generated one, else connection.hostKey.
 */
export function expectedInstalledHostKey(ctx: InstallContext): string | undefined {
  return ctx.installedHostKey ?? publicKeyOnly(ctx.spec.install?.hostKeys?.ed25519?.publicKey) ?? ctx.spec.connection.hostKey;
}

/** "ssh-ed25519 AAAA..." without the comment a .pub file may carry. */
export function publicKeyOnly(line: string | undefined): string | undefined {
  return line?.trim().split(/\s+/).slice(0, 2).join(" ");
}

/** One dial per attempt: the wait loops of kexec and reboot retry themselves. */
export function singleDial(connection: Connection): Connection {
  return { ...connection, dialErrorLimit: 1 };
}
