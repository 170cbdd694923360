// Copies a closure to a target, in this process (copy-paths.ts) or, when it is large, in a
// child node process with its own connection (in-child.ts), which bounds its memory.
import type { SshSession } from "../ssh";
import { closingReconnectsOnFailure } from "../ssh/reconnected";
import { cryptoBindingWarning } from "../ssh/crypto-binding";
import { closureOf } from "../nix/closure";
import { CopyInterrupted } from "./stream";
import { copyPaths, queryTarget } from "./copy-paths";
import { copyInChild } from "./in-child";
import type { CopyOptions, CopyResult, TargetFacts } from "./options";
import { MiB } from "../util/units";

export type { CopyOptions, CopyResult } from "./options";

/** Copies at least this large run in a child process (unless options.inProcess). */
export const CHILD_BYTES = 16 * MiB;

export async function copyClosure(session: SshSession, storePath: string, options: CopyOptions = {}): Promise<CopyResult> {
  const { reconnect } = options;
  if (!reconnect) return copyOnce(session, storePath, options);
  return closingReconnectsOnFailure(reconnect, (tracked) => copyOnce(session, storePath, { ...options, reconnect: tracked }));
}

async function copyOnce(session: SshSession, storePath: string, options: CopyOptions): Promise<CopyResult> {
  const started = Date.now();
  const warning = cryptoBindingWarning();
  if (warning) options.progress?.(`copy: ${warning}`);
  const closure = await closureOf(storePath);
  let first: TargetFacts | undefined;
  if (!options.inProcess && session.connection) {
    // What the target lacks decides where the copy runs: an answer lost to a dropped
    // connection is asked again on a new one (a failure is thrown as it is), never guessed.
    const paths = closure.map((p) => p.path);
    first = await queryTarget(session, paths, options.storeRoot).catch(async (err: unknown) => {
      if (!(err instanceof CopyInterrupted)) throw err;
      if (!options.reconnect) return undefined; // copyPaths says what was kept and what to do
      options.progress?.(`copy: ${err.message}; reconnecting to ask again`);
      session.close();
      session = await options.reconnect();
      return queryTarget(session, paths, options.storeRoot);
    });
    const bytes = closure.reduce((sum, p) => sum + (first?.missing.has(p.path) ? p.narSize : 0), 0);
    if (first && bytes >= CHILD_BYTES && session.connection) return copyInChild(session, session.connection, closure, first, options);
  }
  return copyPaths(session, closure, first, options, started);
}
