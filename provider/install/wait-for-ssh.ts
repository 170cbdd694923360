import { NixosPulumiError } from "../errors";
import type { SshSession } from "../ssh";
import type { InstallContext } from "./context";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the machine stops answering on `session` (it is rebooting or kexec'ing). */
export async function waitForDisconnect(session: SshSession, timeoutSeconds: number, step: string, host: string): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (Date.now() < deadline) {
    if (!session.isOpen) return;
    const alive = await Promise.race([
      session.exec("true").then((r) => r.code === 0, () => false),
      sleep(3000).then(() => false),
    ]);
    if (!alive) return;
    await sleep(500);
  }
  throw new NixosPulumiError(`the machine still answers SSH ${timeoutSeconds}s after the ${step} started`, {
    step,
    host,
    hint: `look at the machine's console; the ${step} did not take place`,
  });
}

/** Reconnects until the machine answers again, within the phase's timeout. */
export async function waitForReconnect(ctx: InstallContext, hostKey: string | undefined, timeoutSeconds: number, step: string): Promise<SshSession> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await ctx.connect(hostKey);
    } catch (err) {
      if (err instanceof NixosPulumiError && /host key mismatch/.test(err.message)) throw err;
      last = err;
      await sleep(2000);
    }
  }
  throw new NixosPulumiError(`the machine did not answer SSH within ${timeoutSeconds}s after the ${step}: ${(last as Error)?.message ?? ""}`, {
    step,
    host: ctx.spec.connection.host,
    hint: `look at the machine's console; raise install.timeouts.${step === "reboot" ? "rebootSeconds" : "kexecSeconds"} for slow machines`,
  });
}
