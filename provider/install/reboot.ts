import { fingerprint } from "../ssh";
import { rebootInto } from "../switch";
import { expectedInstalledHostKey, singleDial, type InstallContext } from "./context";

/** Reboots into the installed system and confirms it booted the expected toplevel. */
export async function rebootPhase(ctx: InstallContext): Promise<void> {
  await ctx.session.exec("sync; umount -R /mnt 2>/dev/null; true");
  const expectedKey = expectedInstalledHostKey(ctx);
  ({ session: ctx.session } = await rebootInto(ctx.session, {
    toplevel: ctx.toplevel,
    open: () => ctx.connect(expectedKey, singleDial(ctx.spec.connection)),
    timeoutSeconds: ctx.spec.install?.timeouts.rebootSeconds ?? 600,
    step: "reboot",
    progress: ctx.progress,
  }));
  ctx.progress(`reboot: host key ${fingerprint(ctx.session.hostKey)}${expectedKey ? ", as pinned" : ", recorded (no install phase ran and neither install.hostKeys nor connection.hostKey was given)"}`);
}
