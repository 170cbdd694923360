// The install, as nixos-anywhere runs it: facts first, then the chosen phases in order.
import { INSTALL_PHASES } from "../schema/nixos-host";
import type { HostState } from "../switch";
import type { InstallContext, Phase } from "./context";
import { diskoPhase } from "./disko";
import { gatherFacts, type MachineFacts } from "./facts";
import { installPhase } from "./install";
import { kexecPhase } from "./kexec";
import { rebootPhase } from "./reboot";

/** Each phase gets the facts as gathered before the first one (kexec: whether it runs already in the installer). */
const PHASES: Record<Phase, (ctx: InstallContext, facts: MachineFacts) => Promise<void>> = {
  kexec: kexecPhase,
  disko: diskoPhase,
  install: installPhase,
  reboot: rebootPhase,
};

/** `state`: the machine's state when the caller just read it (under the deploy lock). */
export async function runInstall(ctx: InstallContext, phases: Phase[], state?: HostState): Promise<void> {
  const selected = INSTALL_PHASES.filter((p) => phases.includes(p));
  const facts = await gatherFacts(ctx, selected, state);
  for (const phase of selected) {
    const started = Date.now();
    await ctx.lock?.ensureHeld(`the ${phase} phase`);
    // The reboot clears /run, and with it the lease that holds the machine until then.
    if (phase === "reboot") await ctx.lock?.keepUntilReboot();
    ctx.progress(`${phase}: start`);
    await PHASES[phase](ctx, facts);
    ctx.progress(`${phase}: done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
}
