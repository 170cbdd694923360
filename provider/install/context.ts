import type { RenderedLayout } from "../disk";
import type { Progress } from "../progress";
import type { NixosHostSpec } from "../schema/nixos-host";
import type { SshSession } from "../ssh";

export type Phase = "kexec" | "disko" | "install" | "reboot";

/** What every install phase works with; `session` is replaced when a phase reconnects. */
export interface InstallContext {
  spec: NixosHostSpec;
  toplevel: string;
  layout: RenderedLayout | undefined;
  progress: Progress;
  session: SshSession;
  /** Opens a new session; `hostKey` pins it, undefined accepts (and logs) whatever key is shown. */
  connect(hostKey: string | undefined): Promise<SshSession>;
}

/** The host key the installed system will present: pre-generated, or declared. */
export function installedHostKey(spec: NixosHostSpec): string | undefined {
  return spec.install?.hostKeys?.ed25519?.publicKey ?? spec.connection.hostKey;
}
