import type { NixosHostSpec } from "../schema/nixos-host";
import type { FileToUpload } from "../ssh";

type ExtraFiles = NonNullable<NixosHostSpec["install"]>["extraFiles"];

/**
 * Extra files under `root` with their owner, group and mode, content as given (text) or
 * decoded from base64 (binary). Owners are numeric ids or "root": during the install the new
 * system's users exist only as numbers. Each is chowned before its mode is set (chown clears
 * the setuid and setgid bits; nixos-anywhere's `tar -p` keeps them too).
 */
export function extraFiles(files: ExtraFiles, root: string): FileToUpload[] {
  return Object.entries(files).map(([file, spec]) => ({
    path: `${root}${file}`,
    content: spec.encoding === "base64" ? Buffer.from(spec.content, "base64") : spec.content,
    mode: spec.mode,
    owner: idOf(spec.owner),
    group: idOf(spec.group),
  }));
}

function idOf(owner: number | string): number {
  return owner === "root" ? 0 : Number(owner);
}
