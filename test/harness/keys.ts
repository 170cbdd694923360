import { mkdtempSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
  privateKeyPath: string;
}

/** A fresh ed25519 key pair made with ssh-keygen, optionally with a passphrase. */
export async function generateKeyPair(comment: string, passphrase = ""): Promise<KeyPair> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nixos-pulumi-key-"));
  const privateKeyPath = path.join(dir, "id_ed25519");
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
