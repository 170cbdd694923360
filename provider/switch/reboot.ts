import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import { bootIdOf, waitForNewBoot, type SshSession } from "../ssh";
import { closingReconnectsOnFailure } from "../ssh/reconnected";
import { readHostState, type HostState } from "./host-state";

export interface RebootOptions {
  /** The system the machine must boot: /run/booted-system and /run/current-system are checked. */
  toplevel: string;
  /** A new connection (pinned to the host key the booted system will present). */
  open: () => Promise<SshSession>;
  timeoutSeconds: number;
  step: string;
  progress: Progress;
}

/**
 * The command that reboots the machine: detached and delayed, as nixos-anywhere's
 * `sleep 6 && reboot`, so it returns before the machine goes down. A clean reboot
 * (systemctl reboot on NixOS) ends every process, this one too, before its `reboot -f`;
 * that runs only on a machine still up `forceAfterSeconds` later (an init that ignored
 * `reboot`, a `reboot` that failed).
 */
export function rebootCommand(timing: { delaySeconds: number; forceAfterSeconds: number } = { delaySeconds: 2, forceAfterSeconds: 30 }): string {
  return `sync; (sleep ${timing.delaySeconds}; reboot; sleep ${timing.forceAfterSeconds}; reboot -f) </dev/null >/dev/null 2>&1 &`;
}

/**
 * Reboots the machine, waits for it to come back with a new boot id, and confirms that it
 * booted `toplevel`. Returns the new session and the state read over it.
 */
export function rebootInto(session: SshSession, options: RebootOptions): Promise<{ session: SshSession; state: HostState }> {
  return closingReconnectsOnFailure(options.open, (open) => rebootOver(session, { ...options, open }));
}

async function rebootOver(session: SshSession, options: RebootOptions): Promise<{ session: SshSession; state: HostState }> {
  const started = Date.now();
  const oldBootId = await bootIdOf(session);
  options.progress(`${options.step}: rebooting into ${options.toplevel}`);
  await session.exec(rebootCommand());
  session.close();
  const fresh = await waitForNewBoot(options.open, oldBootId, {
    timeoutSeconds: options.timeoutSeconds,
    step: options.step,
    host: session.target,
    hint: "look at the machine's console: the bootloader or the new system's boot may have failed",
    progress: options.progress,
    oldHostKey: session.hostKey,
  });
  const state = await readHostState(fresh);
  if (state.bootedSystem !== options.toplevel || state.currentSystem !== options.toplevel) {
    throw new NixosPulumiError(
      `after the reboot the machine booted ${state.bootedSystem || "no NixOS system"} (current system ${state.currentSystem || "none"}), not ${options.toplevel}`,
      { step: options.step, host: session.target, hint: "check the bootloader and the disk the firmware boots from (the layout's EF02/EF00 partitions)" },
    );
  }
  options.progress(`${options.step}: back up on ${options.toplevel} after ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return { session: fresh, state };
}
