import { createHash } from "node:crypto";
import { NixosPulumiError } from "../errors";

/** "ssh-ed25519 AAAA..." from the raw key blob a server presents. */
export function publicKeyLine(blob: Buffer): string {
  const typeLength = blob.readUInt32BE(0);
  const type = blob.subarray(4, 4 + typeLength).toString("ascii");
  return `${type} ${blob.toString("base64")}`;
}

function blobOf(line: string): Buffer {
  const [, base64] = line.trim().split(/\s+/);
  return Buffer.from(base64 ?? "", "base64");
}

/** The fingerprint `ssh-keygen -lf` prints: SHA256:<unpadded base64>. */
export function fingerprint(line: string): string {
  return "SHA256:" + createHash("sha256").update(blobOf(line)).digest("base64").replace(/=+$/, "");
}

export function sameHostKey(a: string, b: string): boolean {
  return blobOf(a).equals(blobOf(b));
}

export class HostKeyMismatchError extends NixosPulumiError {
  constructor(
    host: string,
    readonly expected: string,
    readonly seen: string,
  ) {
    super(
      `host key mismatch: expected ${fingerprint(expected)} (${expected.split(" ")[0]}), the server presented ${fingerprint(seen)} (${seen.split(" ")[0]}); no command was run`,
      {
        step: "connect",
        host,
        hint:
          "if the machine was reinstalled or its host key rotated on purpose, check the new key out of band (the cloud " +
          "console, or ssh-keyscan from a trusted network) and set connection.hostKey to it: `pulumi up` verifies it with a " +
          "handshake before recording it; otherwise someone may be intercepting the connection",
      },
    );
  }
}

/**
 * The host-key algorithms to offer when a key is pinned: only those of the pinned key's
 * type. A server with several host keys otherwise presents the type the client prefers
 * (ssh2 asks for ed25519 first), and a pinned RSA or ECDSA key would look like a mismatch.
 */
export function hostKeyAlgorithmsFor(pinned: string): string[] | undefined {
  const type = pinned.trim().split(/\s+/)[0];
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  if (type === "ssh-ed25519" || type?.startsWith("ecdsa-sha2-")) return [type];
  return undefined;
}
