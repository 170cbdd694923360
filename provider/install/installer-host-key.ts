import { NixosPulumiError } from "../errors";
import { fingerprint } from "../ssh";
import type { InstallContext } from "./context";

/** The host key types NixOS's sshd serves by default (services.openssh.hostKeys: rsa, ed25519). */
const SERVED = ["ssh-ed25519", "ssh-rsa"];

/**
 * The key to pin for the installer after kexec. kexec/run carries every /etc/ssh/ssh_host_*
 * file into the installer, but its sshd writes HostKey lines only for RSA and ed25519: an
 * ECDSA key the rescue system presented is not served there. Then the rescue system's
 * ed25519 (else RSA) key is read over the connection already verified with the pinned key.
 */
export async function installerHostKey(ctx: InstallContext): Promise<string> {
  const presented = ctx.session.hostKey;
  const type = presented.split(" ")[0] ?? "";
  if (SERVED.includes(type)) return presented;
  for (const t of ["ed25519", "rsa"]) {
    const file = `/etc/ssh/ssh_host_${t}_key`;
    const read = await ctx.session.exec(`[ -f ${file} ] && { ssh-keygen -y -f ${file} </dev/null 2>/dev/null || cat ${file}.pub; }`);
    const line = read.stdout.trim().match(/^(ssh-ed25519|ssh-rsa) [A-Za-z0-9+/]+=*/)?.[0];
    if (read.code === 0 && line) {
      ctx.progress(
        `kexec: the machine presented an ${type} host key, which the NixOS installer's sshd does not serve (RSA and ed25519 only); ` +
          `the installer is pinned to the machine's ${file} (${fingerprint(line)}), read over the verified connection`,
      );
      return line;
    }
  }
  throw new NixosPulumiError(
    `the machine presented an ${type} host key, which the NixOS installer's sshd does not serve (it serves RSA and ed25519 host keys only), and it has no /etc/ssh/ssh_host_ed25519_key or ssh_host_rsa_key to pin instead; nothing was changed`,
    {
      step: "kexec",
      host: ctx.spec.connection.host,
      hint: "create one on the machine (ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key) and run `pulumi up` again: the kexec carries it into the installer, and the provider reads it over the connection verified with connection.hostKey",
    },
  );
}
