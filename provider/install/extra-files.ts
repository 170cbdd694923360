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
    const target = `${root}${file}`;
    const content = spec.encoding === "base64" ? Buffer.from(spec.content, "base64") : spec.content;
    await session.upload(target, content, spec.mode);
    await session.execOk(`chown ${idOf(spec.owner)}:${idOf(spec.group)} ${shellQuote(target)}`, "install: extra files");
  }
}

function idOf(owner: number | string): string {
  return owner === "root" ? "0" : String(owner);
}
