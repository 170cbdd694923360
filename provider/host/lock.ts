// The deploy lock for one host operation, on a session of its own (pinned like the others),
// which reconnects the same way when it drops.
import type { Progress } from "../progress";
import type { NixosHostSpec } from "../schema/nixos-host";
import { acquireDeployLock, type DeployLock } from "../switch/deploy-lock";
import { openSession } from "./session";

/**
 * Waits (up to switch.timeoutSeconds: as long as one switch may take) for any other
 * deployment of this machine to finish, then holds the lock until released.
 */
export async function lockHost(spec: NixosHostSpec, hostKey: string, who: string, progress: Progress): Promise<DeployLock> {
  const session = await openSession(spec, hostKey, progress);
  return acquireDeployLock(session, {
    holder: who,
    waitSeconds: spec.switch.timeoutSeconds,
    log: progress,
    reconnect: () => openSession(spec, hostKey, progress),
  });
}
