// The installed system's SSH host key, known before its first boot: NixOS's sshd generates
// a key of each services.openssh.hostKeys type that is missing on first boot (sshd.nix,
// preStart), and nobody could verify that one. So the provider writes an ed25519 key
// (install.hostKeys', or a new one) where sshd reads it, and pins it after the reboot.
import { fingerprint, generateEd25519KeyPair, type FileToUpload, type SshKeyPair } from "../ssh";
import { publicKeyOnly, type InstallContext } from "./context";

const KEY_PATH = "/etc/ssh/ssh_host_ed25519_key";

/** install.hostKeys.ed25519 when given, else a new key pair (a reinstall makes another). */
export function hostKeyForInstall(ctx: InstallContext): SshKeyPair & { generated: boolean } {
  const given = ctx.spec.install?.hostKeys?.ed25519;
  if (given) return { privateKey: given.privateKey, publicKey: given.publicKey.trim(), generated: false };
  return { ...generateEd25519KeyPair(`root@${ctx.spec.connection.host}`), generated: true };
}

/**
 * The host key's files in the new root, as nixos-anywhere's --copy-host-keys / extra files
 * write them: the private key root's and 0600, the public key 0644 (the caller makes /etc/ssh
 * 0755: hostKeyDirCommand), and the line to report once they are written. Records the public
 * key in the context for the reboot's pin.
 */
export function hostKeyFiles(ctx: InstallContext, root = "/mnt"): { files: FileToUpload[]; written: string } {
  const key = hostKeyForInstall(ctx);
  ctx.installedHostKey = publicKeyOnly(key.publicKey);
  return {
    files: [
      { path: `${root}${KEY_PATH}`, content: key.privateKey.replace(/\n?$/, "\n"), mode: "0600", owner: 0, group: 0 },
      { path: `${root}${KEY_PATH}.pub`, content: key.publicKey + "\n", mode: "0644", owner: 0, group: 0 },
    ],
    written: `install: host key ${fingerprint(key.publicKey)} (ed25519, ${key.generated ? "generated for this install" : "from install.hostKeys"}) written to ${KEY_PATH}; pinned after the reboot`,
  };
}

/** /etc/ssh under `root`, 0755 (sshd refuses keys in a directory others can write). */
export function hostKeyDirCommand(root = "/mnt"): string {
  return `mkdir -p ${root}/etc/ssh && chmod 0755 ${root}/etc/ssh`;
}
