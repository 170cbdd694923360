// Copies a closure to a target, in this process (copy-paths.ts) or, when it is large, in a
// child node process with its own connection (in-child.ts), which bounds its memory.
import type { SshSession } from "../ssh";
import { closingReconnectsOnFailure } from "../ssh/reconnected";
import { cryptoBindingWarning } from "../ssh/crypto-binding";
import { closureOf } from "../nix/closure";
import { copyPaths } from "./copy-paths";
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
  if (options.inProcess || !session.connection) return copyPaths(session, closure, undefined, options, started);
  // The first question (which also sends a small copy at once) decides where the copy runs: a
  // large one in its own process, with what the target lacks as just asked.
  let large: TargetFacts | undefined;
  const here = await copyPaths(session, closure, undefined, options, started, (facts, bytes) => {
    if (bytes < CHILD_BYTES) return false;
    large = facts;
    return true;
  });
  if (!large) return here;
  if (options.sendAfter && !(await options.sendAfter)) return { ...here, withheld: true };
  return copyInChild(here.session, here.session.connection ?? session.connection, closure, large, options);
}
