// Which stack and resource manage a machine, recorded on the machine itself. It lives under
// /nix/var beside the system profiles: it survives switches and reboots (/run does not), and
// a second stack aimed at the same machine reads it before it changes anything.
import type { SshSession } from "../ssh";

export const OWNER_RECORD = "/nix/var/nixos-pulumi/owner";

export interface HostOwner {
  /** "<project>/<stack>". */
  stack: string;
  /** The managing resource's URN ("" in a record that names only the stack). */
  resource: string;
}

/** One line: the stack, a space, the resource's URN (stack names hold no spaces). */
export function formatOwner(owner: HostOwner): string {
  return owner.resource ? `${owner.stack} ${owner.resource}` : owner.stack;
}

export function parseOwner(line: string): HostOwner | undefined {
  const text = line.trim();
  if (!text) return undefined;
  const space = text.indexOf(" ");
  return space < 0 ? { stack: text, resource: "" } : { stack: text.slice(0, space), resource: text.slice(space + 1) };
}

/** Records `owner` (written whole, then renamed). `root` is "/mnt" for a system installed but not yet booted. */
export async function writeOwnerRecord(session: SshSession, owner: HostOwner, root = ""): Promise<void> {
  await session.upload(`${root}${OWNER_RECORD}`, `${formatOwner(owner)}\n`, "0644");
}
