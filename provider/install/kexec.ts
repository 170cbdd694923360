import { createReadStream } from "node:fs";
import { NixosPulumiError } from "../errors";
import { fingerprint } from "../ssh";
import type { InstallContext } from "./context";
import { waitForDisconnect, waitForReconnect } from "./wait-for-ssh";

/**
 * Boots the machine into the installer of a kexec tarball in nixos-anywhere's format
 * (a tarball holding kexec/run, which carries the authorized keys and network over).
 */
export async function kexecPhase(ctx: InstallContext): Promise<void> {
  const tarball = ctx.spec.install?.kexecTarball;
  if (!tarball) {
    throw new NixosPulumiError("the kexec phase needs install.kexecTarball", {
      step: "kexec",
      host: ctx.spec.connection.host,
      hint: 'give install.kexecTarball (a nixos-anywhere kexec tarball holding kexec/run), or leave "kexec" out of install.phases',
    });
  }
  const timeout = ctx.spec.install?.timeouts.kexecSeconds ?? 300;
  const unpack = tarball.endsWith(".zst") ? "zstd -dc | tar -C /root -xf -" : "tar -C /root -xzf -";
  ctx.progress(`kexec: uploading ${tarball}`);
  await ctx.session.execOk(`rm -rf /root/kexec && mkdir -p /root && ${unpack}`, "kexec", { stdin: createReadStream(tarball) });
  ctx.progress("kexec: starting the installer");
  await ctx.session.execOk("setsid /root/kexec/run </dev/null >/root/kexec.log 2>&1 &", "kexec");
  await waitForDisconnect(ctx.session, timeout, "kexec", ctx.spec.connection.host);
  ctx.session.close();
  // The installer has a host key of its own: it is shown, not pinned.
  ctx.session = await waitForReconnect(ctx, undefined, timeout, "kexec");
  ctx.progress(`kexec: installer is up (host key ${fingerprint(ctx.session.hostKey)})`);
}
