import { ConnectFailedError, NixosPulumiError } from "../errors";
import { HostKeyMismatchError, sameHostKey } from "./host-key";
import { NoSshGreeting } from "./greeting-probe";
import type { SshSession } from "./session";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How long a machine may answer SSH and refuse the login before the wait ends: the old system
 * may refuse root for the seconds before the kexec (nixos-images' run waits a few seconds
 * before `kexec -e`), a new one may start sshd a moment before its keys are in place; a
 * refusal that lasts is the new system not authorizing the deployer, which no waiting cures.
 */
export const AUTH_REFUSED_GRACE_SECONDS = 30;

export async function bootIdOf(session: SshSession): Promise<string> {
  return (await session.execOk("cat /proc/sys/kernel/random/boot_id", "read boot id")).trim();
}

/**
 * After a reboot or kexec was started: connects again and again (each a new connection)
 * until the machine answers with a boot id other than `oldBootId`, within the timeout. A
 * machine that still answers from the old boot is not "back", and a dropped connection is
 * not proof that it went down: only a new boot id is. A host-key mismatch ends the wait,
 * unless the key is `oldHostKey`: the old boot (e.g. the installer before the reboot into the
 * installed system) still answering.
 */
export async function waitForNewBoot(
  open: () => Promise<SshSession>,
  oldBootId: string,
  options: {
    timeoutSeconds: number;
    step: string;
    host: string;
    hint: string;
    progress?: (line: string) => void;
    oldHostKey?: string;
    authRefusedGraceSeconds?: number;
  },
): Promise<SshSession> {
  const started = Date.now();
  const deadline = started + options.timeoutSeconds * 1000;
  let lastContact = "no answer yet";
  let reported = 0;
  let refusedSince: number | undefined;
  const reportWait = () => {
    const waited = Math.round((Date.now() - started) / 1000);
    if (waited - reported >= 15) {
      reported = waited;
      options.progress?.(`${options.step}: waiting for the machine to come back (${waited}s; ${lastContact})`);
    }
  };
  while (Date.now() < deadline) {
    try {
      const session = await open();
      refusedSince = undefined;
      // Unprivileged: a failing sudo must not read as "no new boot yet".
      const read = await session
        .exec("cat /proc/sys/kernel/random/boot_id", { privileged: false })
        .catch((e: Error) => ({ code: null, stdout: "", stderr: e.message }));
      const bootId = read.code === 0 ? read.stdout.trim() : "";
      if (bootId && bootId !== oldBootId) return session;
      session.close();
      lastContact = bootId
        ? `the machine still answered from its old boot (boot id ${oldBootId.slice(0, 8)}…)`
        : `logged in, but reading the boot id failed: ${(read.stderr.trim() || `exit ${read.code}`).split("\n")[0]}`;
    } catch (err) {
      if (err instanceof HostKeyMismatchError) {
        if (!options.oldHostKey || !sameHostKey(err.seen, options.oldHostKey)) throw err;
        lastContact = "the machine still answered with its old host key (not rebooted yet)";
        await sleep(2000);
        continue;
      }
      lastContact = `SSH: ${(err as Error).message.split("\n")[0]}`;
      if (err instanceof ConnectFailedError && err.failure === "login-refused") {
        refusedSince ??= Date.now();
        if (Date.now() - refusedSince >= (options.authRefusedGraceSeconds ?? AUTH_REFUSED_GRACE_SECONDS) * 1000) {
          throw new NixosPulumiError(`the machine is back (it answers SSH) but refuses the login: ${(err as Error).message.split("\n")[0]}`, {
            step: options.step,
            host: options.host,
            hint: "the booted system must authorize the deployer's key for this user (users.users.<name>.openssh.authorizedKeys.keys in the system's configuration); check connection.user and its key",
          });
        }
      } else refusedSince = undefined;
      reportWait();
      // Probes that found no greeting spent their own seconds waiting (sshGreetingSoon).
      if (!(err instanceof NoSshGreeting)) await sleep(2000);
      continue;
    }
    reportWait();
    await sleep(2000);
  }
  throw new NixosPulumiError(`the machine did not come back with a new boot within ${options.timeoutSeconds}s; last contact: ${lastContact}`, {
    step: options.step,
    host: options.host,
    hint: options.hint,
  });
}
