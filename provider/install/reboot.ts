import { NixosPulumiError } from "../errors";
import { fingerprint } from "../ssh";
import { installedHostKey, type InstallContext } from "./context";
import { waitForDisconnect, waitForReconnect } from "./wait-for-ssh";

/** Reboots into the installed system and confirms it runs the expected toplevel. */
export async function rebootPhase(ctx: InstallContext): Promise<void> {
  const timeout = ctx.spec.install?.timeouts.rebootSeconds ?? 600;
  ctx.progress("reboot: rebooting into the installed system");
  await ctx.session.exec("sync; umount -R /mnt 2>/dev/null; (sleep 1; reboot -f || reboot) </dev/null >/dev/null 2>&1 &");
  await waitForDisconnect(ctx.session, timeout, "reboot", ctx.spec.connection.host);
  ctx.session.close();
  const expectedKey = installedHostKey(ctx.spec);
  ctx.session = await waitForReconnect(ctx, expectedKey, timeout, "reboot");
  ctx.progress(`reboot: back up (host key ${fingerprint(ctx.session.hostKey)}${expectedKey ? ", as pinned" : ", recorded"})`);
  const current = (await ctx.session.execOk("readlink -f /run/current-system", "reboot")).trim();
  if (current !== ctx.toplevel) {
    throw new NixosPulumiError(`after the reboot the machine runs ${current || "no NixOS system"}, not ${ctx.toplevel}`, {
      step: "reboot",
      host: ctx.spec.connection.host,
      hint: "check the bootloader and the disk the firmware boots from (the layout's EF02/EF00 partitions)",
    });
  }
}
