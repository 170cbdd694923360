// The deploy lock for one host operation, on a session of its own (pinned like the others),
// which reconnects the same way when it drops.
import type { Progress } from "../progress";
import type { NixosHostSpec } from "../schema/nixos-host";
import { acquireDeployLock, type DeployLock } from "../lock/deploy-lock";
import { openSession } from "./session";
import type { SshSession } from "../ssh";
import { NixosPulumiError } from "../errors";
import { engineGone, whenEngineGone } from "../util/engine-lifetime";

/**
 * Waits (up to switch.timeoutSeconds: as long as one switch may take) for any other
 * deployment of this machine to finish, then holds the lock until released. `dialled`: the
 * lock's session, already being dialled pinned to `hostKey` (the lock then owns it).
 */
export async function lockHost(
  spec: NixosHostSpec,
  hostKey: string,
  who: string,
  progress: Progress,
  dialled?: Promise<SshSession>,
  /** Run on the target as soon as the lock is held (DeployLock.readUnderLock). */
  readWhenLocked?: string,
): Promise<DeployLock> {
  let session = await (dialled ?? openSession(spec, hostKey, progress));
  if (!session.isOpen) session = await openSession(spec, hostKey, progress);
  // The engine went away during the wait: stop waiting (the target's script then ends too).
  const stopWaiting = whenEngineGone(() => session.close());
  let lock: DeployLock;
  try {
    lock = await acquireDeployLock(session, {
      holder: who,
      waitSeconds: spec.switch.timeoutSeconds,
      log: progress,
      reconnect: () => openSession(spec, hostKey, progress),
      ...(readWhenLocked ? { readWhenLocked } : {}),
    });
  } finally {
    stopWaiting();
  }
  // ... or while it is held: release it, so the next deployer need not wait out the lease.
  const stopHolding = whenEngineGone(() => lock.release());
  return {
    waited: lock.waited,
    readUnderLock: lock.readUnderLock,
    ensureHeld: async (step) => {
      if (engineGone.aborted) throw new NixosPulumiError(`not going on with ${step}: ${String(engineGone.reason)}`, { step: "lock", host: session.target });
      return lock.ensureHeld(step);
    },
    keepUntilReboot: () => lock.keepUntilReboot(),
    retakeAfterBoot: (open) => lock.retakeAfterBoot(open),
    release: () => {
      stopHolding();
      return lock.release();
    },
  };
}
