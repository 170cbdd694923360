// Runs a large copy in a child node process that loads only ssh2 and the copy's modules and
// has a 1 MiB young generation. A copy makes garbage at the link's rate (pipe reads, ssh2's
// packets) that V8 collects by amount; in the provider's process (@pulumi/pulumi loaded,
// default 16 MiB semi-spaces) 1 GiB raised the peak RSS by ~70 MiB. The child's whole peak is
// what the copy costs (bench/copy.ts, memory). Small copies stay in process: a child costs a
// process start and an SSH handshake, and their garbage is bounded by their size.
import { fork } from "node:child_process";
import * as path from "node:path";
import { NixosPulumiError } from "../errors";
import type { SshSession } from "../ssh";
import type { Connection } from "../schema/connection";
import type { CopyOptions, CopyResult, TargetFacts } from "./options";
import type { PathInfo } from "../nix/closure";
import { localCpuHasAes } from "../ssh/cpu-aes";
import type { ChildMessage, ChildRequest } from "./child";
import { errorFromWire } from "./child-error";
import { whenEngineGone } from "../util/engine-lifetime";

/**
 * Flags of the copy's child: a small young generation, so its garbage is collected early, and
 * `gc` for the child's timer of minor collections (child.ts).
 */
export const CHILD_NODE_FLAGS = ["--max-semi-space-size=1", "--expose-gc"];

/** What a user can do when the copy's own process fails: nothing was registered half. */
const RESUME_HINT = "run `pulumi up` again: the copy resumes, sending only the paths the target still lacks (a memory limit on the deployer can end this process: see its output)";

export async function copyInChild(
  session: SshSession,
  connection: Connection,
  closure: PathInfo[],
  facts: TargetFacts,
  options: CopyOptions,
): Promise<CopyResult> {
  // The closure and what the target lacks, as the parent just found them: the child does not ask again.
  const request: ChildRequest = {
    closure,
    missing: [...facts.missing],
    tools: [...facts.tools],
    preferAes: facts.tools.has("aes") && localCpuHasAes(),
    connection,
    hostKey: session.hostKey,
    reconnect: options.reconnect !== undefined,
    ...(options.storeRoot ? { storeRoot: options.storeRoot } : {}),
    ...(options.compress ? { compress: options.compress } : {}),
    ...(options.stageAbove !== undefined ? { stageAbove: options.stageAbove } : {}),
  };
  const child = fork(path.join(__dirname, "child.js"), [], {
    execArgv: CHILD_NODE_FLAGS,
    stdio: ["ignore", "ignore", "pipe", "ipc"],
    serialization: "json",
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let outcome: ChildMessage | undefined;
  child.on("message", (m: ChildMessage) => {
    if ("progress" in m) options.progress?.(m.progress);
    else outcome = m;
  });
  const exited = new Promise<number | string | null>((resolve, reject) => {
    child.on("error", reject);
    // "close", not "exit": it comes after the IPC channel delivered the last message.
    child.on("close", (code, signal) => resolve(code ?? signal));
  });
  // The engine went away: nobody waits for this copy; what it registered stays.
  const stopOnEngineGone = whenEngineGone(() => {
    child.kill("SIGKILL");
    return exited.then(() => undefined, () => undefined);
  });
  child.send(request);
  const status = await exited
    .catch((err: Error) => {
      throw new NixosPulumiError(`cannot start the copy's node process: ${err.message}`, { step: "copy", host: session.target, hint: RESUME_HINT });
    })
    .finally(stopOnEngineGone);
  if (outcome && "error" in outcome) throw errorFromWire(outcome.error, { step: "copy", host: session.target });
  if (!outcome || !("result" in outcome)) {
    throw new NixosPulumiError(`the copy's node process ended without a result (exit ${status})`, {
      step: "copy",
      host: session.target,
      output: stderr.trim(),
      hint: RESUME_HINT,
    });
  }
  // The parent's own connection idled through the copy; if it dropped meanwhile, open another.
  if (!session.isOpen && options.reconnect) session = await options.reconnect();
  return { ...outcome.result, session };
}
