import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import { fingerprint, shellQuote, type SshSession } from "../ssh";
import { rebootInto } from "../switch";
import { expectedInstalledHostKey, singleDial, type InstallContext } from "./context";
import { INSTALL_DEFAULTS } from "../schema/nixos-host";
import { greetedDial } from "./greeted-dial";

// What nixos-anywhere runs before its reboot: /mnt unmounted, swap off, and every ZFS pool
// exported, so the installed system imports its pools on first boot without force
// (nixpkgs' boot.zfs.forceImportAll defaults to false: a pool last imported by the
// installer's hostid stays out). Unlike nixos-anywhere (`zpool export -a || true`), a pool
// that does not export stops the install before the reboot.
const RELEASE = [
  "sync",
  "if mountpoint -q /mnt; then umount -R /mnt 2>&1 || echo 'warning: umount -R /mnt failed; the reboot unmounts what is left'; fi",
  "swapoff -a 2>&1 || echo 'warning: swapoff -a failed'",
  "if command -v zpool >/dev/null 2>&1; then zpool export -a 2>&1 || exit 3; fi",
  "sync",
].join("\n");

/** Unmounts /mnt, turns swap off and exports the ZFS pools before the reboot. */
export async function releaseForReboot(session: SshSession, progress: Progress): Promise<void> {
  const result = await session.exec(`sh -c ${shellQuote(RELEASE)}`);
  const output = (result.stdout + result.stderr).trim();
  if (result.code === 3) {
    throw new NixosPulumiError("zpool export -a failed: the installed system would not import its ZFS pools on first boot", {
      step: "reboot",
      host: session.target,
      output,
      hint: "nothing was rebooted; find what keeps the pool busy (zpool status, fuser -vm <mountpoint>) on the installer, then run pulumi up again",
    });
  }
  if (result.code !== 0) {
    throw new NixosPulumiError(`releasing the disks before the reboot failed (exit ${result.code ?? result.signal})`, { step: "reboot", host: session.target, output });
  }
  for (const line of output.split("\n").filter(Boolean)) progress(`reboot: ${line}`);
}

/** Reboots into the installed system and confirms it booted the expected toplevel. */
export async function rebootPhase(ctx: InstallContext): Promise<void> {
  await releaseForReboot(ctx.session, ctx.progress);
  const expectedKey = expectedInstalledHostKey(ctx);
  ({ session: ctx.session } = await rebootInto(ctx.session, {
    toplevel: ctx.toplevel,
    open: greetedDial(ctx.spec.connection, () => ctx.connect(expectedKey, singleDial(ctx.spec.connection))),
    timeoutSeconds: (ctx.spec.install ?? INSTALL_DEFAULTS).timeouts.rebootSeconds,
    step: "reboot",
    progress: ctx.progress,
  }));
  ctx.progress(`reboot: host key ${fingerprint(ctx.session.hostKey)}${expectedKey ? ", as pinned" : ", recorded (no install phase ran and neither install.hostKeys nor connection.hostKey was given)"}`);
}
