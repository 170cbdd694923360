import type { NixosHostSpec } from "../schema/nixos-host";
import { shellQuote, type SshSession } from "../ssh";

type ExtraFiles = NonNullable<NixosHostSpec["install"]>["extraFiles"];

/**
 * Writes extra files under `root` with their owner, group and mode, content as given (text)
 * or decoded from base64 (binary). Owners are numeric ids or "root": during the install the
 * new system's users exist only as numbers.
 */
export async function writeExtraFiles(session: SshSession, files: ExtraFiles, root: string): Promise<void> {
  for (const [file, spec] of Object.entries(files)) {
    const content = spec.encoding === "base64" ? Buffer.from(spec.content, "base64") : spec.content;
    await writeFileOwned(session, `${root}${file}`, content, { mode: spec.mode, owner: spec.owner, group: spec.group });
  }
}

/**
 * Uploads one file (0600 while it is written), then sets owner and group, then the mode:
 * chown clears the setuid and setgid bits, so the mode comes last (nixos-anywhere's
 * `tar -p` keeps them too).
 */
export async function writeFileOwned(
  session: SshSession,
  target: string,
  content: string | Buffer,
  file: { mode: string; owner: number | string; group: number | string },
): Promise<void> {
  await session.upload(target, content, "0600");
  await session.execOk(`chown ${idOf(file.owner)}:${idOf(file.group)} ${shellQuote(target)} && chmod ${file.mode} ${shellQuote(target)}`, "install: extra files");
}

function idOf(owner: number | string): string {
  return owner === "root" ? "0" : String(owner);
}
