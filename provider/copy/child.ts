// The child side of a copy run in its own node process (in-child.ts): dials its own SSH
// connection with the parent's connection settings and the host key the parent verified,
// copies, and reports progress, the result or the error over IPC. It loads only ssh2 and the
// copy's modules, so its whole footprint is what the copy costs the deployer.
import { connect } from "../ssh/connect";
import type { Connection } from "../schema/connection";
import { errorToWire, type WireError } from "./child-error";
import { copyPaths } from "./copy-paths";
import type { CopyOptions, CopyReport } from "./options";
import type { PathInfo } from "../nix/closure";

export interface ChildRequest {
  closure: PathInfo[];
  /** The paths the target lacked and the tools it has, when the parent asked. */
  missing: string[];
  tools: string[];
  /** Both ends have AES instructions: offer AES-GCM first. */
  preferAes: boolean;
  connection: Connection;
  hostKey: string;
  storeRoot?: string;
  compress?: CopyOptions["compress"];
  stageAbove?: number;
  reconnect: boolean;
}

export type ChildMessage =
  | { progress: string }
  | { result: CopyReport & { childMaxRssKiB: number; childCipher: string } }
  | { error: WireError };

/**
 * A minor collection this often: the copy's pipe reads and packets die young, and freeing them
 * every 20 ms (~3 MiB at 150 MiB/s) keeps them from piling up until V8's own trigger; each
 * costs well under a millisecond with the copy's small young generation (bench/copy.ts, memory).
 */
const MINOR_GC_MS = 20;

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

async function run(request: ChildRequest): Promise<void> {
  const progress = (line: string) => void send({ progress: line });
  const dial = () => connect(request.connection, { pinnedHostKey: request.hostKey, log: progress, preferAes: request.preferAes });
  const session = await dial();
  const cipher = session.cipher ?? "";
  progress(`copy: own connection, cipher ${cipher}${request.preferAes ? " (both ends have AES instructions)" : ""}`);
  const options: CopyOptions = { progress, inProcess: true };
  if (request.storeRoot) options.storeRoot = request.storeRoot;
  if (request.compress) options.compress = request.compress;
  if (request.stageAbove !== undefined) options.stageAbove = request.stageAbove;
  if (request.reconnect) options.reconnect = dial;
  const facts = { missing: new Set(request.missing), tools: new Set(request.tools) };
  const { session: last, ...result } = await copyPaths(session, request.closure, facts, options);
  last.close();
  await send({ result: { ...result, childMaxRssKiB: process.resourceUsage().maxRSS, childCipher: cipher } });
}

// The provider went away (cancelled, crashed): no copy goes on without anyone to report to.
process.on("disconnect", () => process.exit(1));

process.once("message", (request: ChildRequest) => {
  const gc = (globalThis as { gc?: (options: { type: "minor" }) => void }).gc;
  if (gc) setInterval(() => gc({ type: "minor" }), MINOR_GC_MS).unref();
  run(request).then(
    () => process.exit(0),
    async (err: unknown) => {
      await send({ error: errorToWire(err) });
      process.exit(1);
    },
  );
});
