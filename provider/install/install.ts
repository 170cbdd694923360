import { NixosPulumiError } from "../errors";
import { refuseNonNixosToplevelOnTarget, systemField } from "../nix/nixos-toplevel";
import { buildOnTarget, copyClosure } from "../copy";
import { shellQuote } from "../ssh";
import type { InstallContext } from "./context";
import { forgetLayoutMarker } from "./disko";
import { extraFiles } from "./extra-files";
import { hostKeyDirCommand, hostKeyFiles } from "./host-keys";

/**
 * Installs the system onto the layout mounted at /mnt, as nixos-anywhere does: the closure
 * into /mnt's store (copied, or with build.on "target" built there), /mnt made traversable
 * (nixos-install refuses otherwise) with a /tmp, extra files and the host key (given or
 * generated), then the installer's own `nixos-install --root /mnt --system <toplevel>
 * --no-root-passwd --no-channel-copy`: it sets the profile and installs the bootloader
 * through nixos-enter (private mount namespace, activation first, NIXOS_INSTALL_BOOTLOADER=1).
 */
export async function installPhase(ctx: InstallContext): Promise<void> {
  const { toplevel, spec } = ctx;
  const host = spec.connection.host;
  let session = ctx.session;
  // Both checks in one command: on a slow link or an emulated installer every command counts.
  const ready = await session.exec("mountpoint -q /mnt || { echo no-mount; exit 1; }; command -v nixos-install >/dev/null && command -v nixos-enter >/dev/null || { echo no-installer; exit 1; }");
  if (ready.stdout.includes("no-mount")) {
    throw new NixosPulumiError("nothing is mounted on /mnt to install onto", {
      step: "install",
      host,
      hint: 'include "disko" in install.phases, or mount the target filesystems under /mnt first',
    });
  }
  if (ready.code !== 0) {
    throw new NixosPulumiError("the machine has no nixos-install/nixos-enter: it is not running the NixOS installer", {
      step: "install",
      host,
      hint: 'include "kexec" in install.phases (with install.kexecTarball), or boot the machine into a NixOS installer first',
    });
  }
  if (spec.build.on === "target") {
    // Into /mnt's store directly, as nixos-install builds (`--store /mnt`): the installer's
    // RAM store never holds the system, and the deployer never builds it.
    await buildOnTarget(session, spec.system, toplevel, ctx.progress, "/mnt");
    await refuseNonNixosToplevelOnTarget(session, toplevel, systemField(spec.system), "/mnt");
  } else {
    ctx.progress("install: copying the closure into /mnt");
    // A copy cut mid-way reconnects and resumes; go on over its session.
    ({ session } = await copyClosure(session, toplevel, {
      storeRoot: "/mnt",
      progress: ctx.progress,
      compress: spec.copy.compress,
      // Over the connection the session came on: after kexec that is root@installer on port
      // 22, not the declared rescue connection.
      reconnect: () => ctx.connect(session.hostKey, session.connection),
    }));
    ctx.session = session;
  }
  // One command: /mnt made traversable with a /tmp, the extra files, then the host key (it
  // wins over an extra file of the same name, written before it).
  const hostKey = hostKeyFiles(ctx);
  await session.uploadFiles(
    [...extraFiles(spec.install?.extraFiles ?? {}, "/mnt"), ...hostKey.files],
    `chmod 755 /mnt && mkdir -p /mnt/tmp && chmod 1777 /mnt/tmp && ${hostKeyDirCommand()} || exit 1`,
  );
  ctx.progress(hostKey.written);
  ctx.progress("install: nixos-install (profile, activation, bootloader)");
  // As nixos-anywhere: nixos-install's command inside nixos-enter (its `mount --rbind`) finds
  // its tools through PATH, which on a non-NixOS rescue system lacks the new system's sw/bin.
  const result = await session.exec(`PATH="$PATH:/run/current-system/sw/bin" nixos-install --root /mnt --system ${shellQuote(toplevel)} --no-root-passwd --no-channel-copy </dev/null 2>&1`, {
    onStdout: (chunk) => chunk.toString().split("\n").filter(Boolean).forEach((l) => ctx.progress(`install: ${l}`)),
  });
  if (result.code !== 0) {
    throw new NixosPulumiError(`nixos-install failed (exit ${result.code ?? result.signal})`, {
      step: "install",
      host,
      output: result.stdout.trim().split("\n").slice(-30).join("\n"),
      hint: "read the output above: the bootloader installation (switch-to-configuration boot in nixos-enter) is the usual culprit",
    });
  }
  await forgetLayoutMarker(session);
}
