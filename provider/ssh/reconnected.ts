import type { SshSession } from "./session";

/**
 * Runs a step that may replace the caller's session through `reconnect` (a copy or an
 * activation whose connection dropped). A session it opened reaches the caller only with its
 * result: when the step throws, every session opened through the `reconnect` it was given is
 * closed, so none outlives a failed reconnect or a failure after one.
 */
export async function closingReconnectsOnFailure<T>(reconnect: () => Promise<SshSession>, step: (reconnect: () => Promise<SshSession>) => Promise<T>): Promise<T> {
  const opened: SshSession[] = [];
  try {
    return await step(async () => {
      const session = await reconnect();
      opened.push(session);
      return session;
    });
  } catch (err) {
    for (const session of opened) session.close();
    throw err;
  }
}
