// Applies a key plan over a session: the owners checked first, then writes and removals,
// each phase of a switch at its time.
import type { Progress } from "../progress";
import type { SshSession } from "../ssh";
import type { KeyPlan, KeyToWrite } from "./plan";
import { ensureOwnersExist, removeKey, writeKey } from "./remote";

export type KeyPhase = "pre-activation" | "post-activation" | "all";

function inPhase(write: KeyToWrite, phase: KeyPhase): boolean {
  return phase === "all" || write.key.uploadAt === phase;
}

/**
 * Checks the owners of every key `phase` writes, then writes them; removals go with the
 * post-activation phase (a removed key's consumer has been reconfigured by then) or "all".
 */
export async function applyKeys(session: SshSession, plan: KeyPlan, phase: KeyPhase, progress: Progress): Promise<void> {
  const writes = plan.write.filter((w) => inPhase(w, phase));
  const when = phase === "post-activation" ? "after the activation" : "before the activation";
  await ensureOwnersExist(session, writes, phase === "all" ? "keys name users or groups the machine lacks" : `keys uploaded ${when} name users or groups the machine lacks`);
  for (const write of writes) {
    await writeKey(session, write);
    progress(`keys: ${write.name} written (${write.reason})`);
  }
  if (phase === "pre-activation") return;
  for (const removal of plan.remove) {
    await removeKey(session, removal);
    progress(`keys: ${removal.name} removed from ${removal.path}`);
  }
}

export function hasKeyWork(plan: KeyPlan | undefined): plan is KeyPlan {
  return !!plan && (plan.write.length > 0 || plan.remove.length > 0);
}
