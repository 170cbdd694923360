// A key's bytes and their digest, on the deploying machine.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { NixosPulumiError } from "../errors";
import type { KeySpec } from "../schema/keys";

/** The key's bytes: `content`, or the deployer's file read now. */
export function keyBytes(name: string, key: Pick<KeySpec, "content" | "file">): Buffer {
  if (key.content !== undefined) return Buffer.from(key.content, "utf8");
  try {
    return readFileSync(key.file!);
  } catch (err) {
    throw new NixosPulumiError(`keys["${name}"].file: cannot read ${key.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      step: "keys",
      hint: "give a readable file on the machine that runs pulumi, or the secret itself as content",
    });
  }
}

/**
 * sha256 of the key's bytes. It lives only inside the key's entry, which the resource marks
 * secret, so the state holds it encrypted like the content itself; compared with the file on
 * the machine by refresh.
 */
export function digestOf(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The bytes to upload, refused when a file changed after preview (the state would record another digest). */
export function bytesToUpload(name: string, key: KeySpec): Buffer {
  const bytes = keyBytes(name, key);
  if (key.digest !== undefined && digestOf(bytes) !== key.digest) {
    throw new NixosPulumiError(`keys["${name}"].file (${key.file}) changed after this run's preview`, {
      step: "keys",
      hint: "run `pulumi up` again: the preview then compares the file as it is now",
    });
  }
  return bytes;
}
