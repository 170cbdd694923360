import { NixosPulumiError } from "../errors";
import { copyClosure } from "../nix";
import { shellQuote } from "../ssh";
import type { InstallContext } from "./context";

const PROFILES = "/mnt/nix/var/nix/profiles";

/**
 * Installs the system onto the mounted layout: closure into /mnt's store, the system
 * profile, extra files and host keys, then the bootloader through the new system's own
 * `switch-to-configuration boot` inside a chroot (as nixos-install does).
 */
export async function installPhase(ctx: InstallContext): Promise<void> {
  const { toplevel } = ctx;
  let session = ctx.session;
  if ((await session.exec("mountpoint -q /mnt")).code !== 0) {
    throw new NixosPulumiError("nothing is mounted on /mnt to install onto", {
      step: "install",
      host: ctx.spec.connection.host,
      hint: 'include "disko" in install.phases, or mount the target filesystems under /mnt first',
    });
  }
  ctx.progress("install: copying the closure into /mnt");
  // A copy cut mid-way reconnects and resumes; go on over its session.
  ({ session } = await copyClosure(session, toplevel, {
    storeRoot: "/mnt",
    progress: ctx.progress,
    compress: ctx.spec.copy.compress,
    reconnect: () => ctx.connect(session.hostKey),
  }));
  ctx.session = session;
  await session.execOk(
    `mkdir -p ${PROFILES} && ln -sfn ${shellQuote(toplevel)} ${PROFILES}/system-1-link && ln -sfn system-1-link ${PROFILES}/system && mkdir -p /mnt/etc && touch /mnt/etc/NIXOS`,
    "install",
  );
  for (const [file, { content, mode }] of Object.entries(ctx.spec.install?.extraFiles ?? {})) {
    await session.upload(`/mnt${file}`, content, mode);
  }
  const key = ctx.spec.install?.hostKeys?.ed25519;
  if (key) {
    await session.upload("/mnt/etc/ssh/ssh_host_ed25519_key", key.privateKey.replace(/\n?$/, "\n"), "0600");
    await session.upload("/mnt/etc/ssh/ssh_host_ed25519_key.pub", key.publicKey.trim() + "\n", "0644");
  }
  ctx.progress("install: installing the bootloader (switch-to-configuration boot in /mnt)");
  await session.execOk(
    [
      "for d in dev proc sys; do mkdir -p /mnt/$d && mount --rbind /$d /mnt/$d; done",
      `NIXOS_INSTALL_BOOTLOADER=1 chroot /mnt ${shellQuote(toplevel)}/bin/switch-to-configuration boot; status=$?`,
      "for d in dev proc sys; do umount -R /mnt/$d 2>/dev/null || umount -l /mnt/$d; done",
      "exit $status",
    ].join("\n"),
    "install: bootloader",
  );
}
