// SSH keys for tests, made with ssh-keygen. Key files live in a temporary directory that is
// removed when the test process exits (or in a directory the caller owns).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
  privateKeyPath: string;
}

const tempDirs = new Set<string>();

function tempKeyDir(): string {
  if (tempDirs.size === 0) process.once("exit", () => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const dir = mkdtempSync(path.join(os.tmpdir(), "nixos-pulumi-key-"));
  tempDirs.add(dir);
  return dir;
}

/**
 * A fresh ed25519 key pair, optionally with a passphrase. Written as `<dir>/<fileName>`
 * (+ ".pub"); without `dir`, in a temporary directory removed at process exit.
 */
export async function generateKeyPair(comment: string, passphrase = "", dir?: string, fileName = "id_ed25519"): Promise<KeyPair> {
  const privateKeyPath = path.join(dir ?? tempKeyDir(), fileName);
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", privateKeyPath]);
  return {
    privateKey: readFileSync(privateKeyPath, "utf8"),
    publicKey: readFileSync(privateKeyPath + ".pub", "utf8").trim(),
    privateKeyPath,
  };
}

let clientKey: Promise<KeyPair> | undefined;

/** The test client's key, authorized for root on every test host. */
export function testClientKey(): Promise<KeyPair> {
  clientKey ??= generateKeyPair("nixos-pulumi-test-client");
  return clientKey;
}
