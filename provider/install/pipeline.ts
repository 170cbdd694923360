// The install, as nixos-anywhere runs it: facts first, then the chosen phases in order.
import { INSTALL_PHASES } from "../schema/nixos-host";
import type { InstallContext, Phase } from "./context";
import { diskoPhase } from "./disko";
import { gatherFacts } from "./facts";
import { installPhase } from "./install";
import { kexecPhase } from "./kexec";
import { rebootPhase } from "./reboot";

const PHASES: Record<Phase, (ctx: InstallContext) => Promise<void>> = {
  kexec: kexecPhase,
  disko: diskoPhase,
  install: installPhase,
  reboot: rebootPhase,
};

export async function runInstall(ctx: InstallContext, phases: Phase[]): Promise<void> {
  const selected = INSTALL_PHASES.filter((p) => phases.includes(p));
  await gatherFacts(ctx, selected);
  for (const phase of selected) {
    const started = Date.now();
    await ctx.lock?.ensureHeld(`the ${phase} phase`);
    // The reboot clears /run, and with it the lease that holds the machine until then.
    if (phase === "reboot") await ctx.lock?.keepUntilReboot();
    ctx.progress(`${phase}: start`);
    await PHASES[phase](ctx);
    ctx.progress(`${phase}: done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
}
