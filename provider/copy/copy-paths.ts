// The copy of a known closure in this process: ask the target's `nix-store --serve --write`
// which paths it lacks (and the shell which decompressors it has), and stream those as
// pipelined AddToStoreNar commands into it, in the same command when the copy is small;
// large paths go through a staging file so they resume mid-path.
// When the connection drops, reconnect (within the connection's dial limits), ask again,
// and send only what the target still lacks.
import { ConnectionLostError } from "../errors";
import type { SshSession } from "../ssh";
import type { PathInfo } from "../nix/closure";
import { chooseCompression, type Compression } from "./compression";
import { AutoCompression } from "./auto-compression";
import { CopyInterrupted, queryAndStream, streamPaths } from "./stream";
import { importStaged, stagePath, StagingFileRefused } from "./staged";
import { copyProgress, type CopyProgress } from "./progress";
import type { CopyOptions, CopyResult, TargetFacts } from "./options";
import { MiB } from "../util/units";

/** Paths at least this large are staged in a file on the target and resume mid-path. */
export const STAGE_BYTES = 64 * MiB;
/** `auto` measures a stretch of this much of a large path (staged) before deciding on compression. */
const PROBE_BYTES = 8 * MiB;
/**
 * On a stream of small paths `auto` measures the NAR rate over PROBE_BYTES or a second once
 * the target is taking them in (stream.ts, probe), without stopping the stream: a fast link
 * goes on uncompressed in the same stream; on a slower one the stream ends after the current
 * path and a compressed stretch is measured the same way (auto-compression.ts).
 */
const STREAM_PROBE = { startBy: 8 * MiB, span: PROBE_BYTES, seconds: 1 };
/** The compressed stretch: its channel's window holds more NAR bytes, but fills as fast. */
const TRIAL_PROBE = { startBy: 4 * MiB, span: PROBE_BYTES, seconds: 1 };
/** Below this much to send, compression is not worth deciding about. */
const PROBE_MIN_TOTAL = 24 * MiB;
const MAX_RESUMES = 5;

/** Paths this large are staged (resumable mid-path) where the target's flock takes -w. */
function stageAboveFor(tools: Set<string>, options: CopyOptions): number {
  return tools.has("flock") ? (options.stageAbove ?? STAGE_BYTES) : Infinity;
}

/**
 * The copy of a known closure; `first` is what the target lacked when just asked (asked
 * again when left out, and after every reconnect).
 */
export async function copyPaths(
  session: SshSession,
  closure: PathInfo[],
  first: TargetFacts | undefined,
  options: CopyOptions,
  started = Date.now(),
  /** Asked once what the target lacks: true ends the copy here, unsent (the caller copies elsewhere). */
  handOff?: (facts: TargetFacts, bytes: number) => boolean,
): Promise<CopyResult> {
  const setting = options.compress ?? "auto";
  let auto: AutoCompression | undefined;
  let fixed: Compression | undefined = setting === "auto" ? undefined : setting;
  let counter: CopyProgress | undefined;
  let pathsCopied = 0;
  let bytesCopied = 0;
  let resumes = 0;
  const resumedWithinPath: number[] = [];
  let handedOff = false;
  let withheld = false;
  const maySend = async () => {
    if (options.sendAfter && !(await options.sendAfter)) withheld = true;
    return !withheld;
  };
  // What the target lacks, and the progress counter set up for it.
  const plan = (facts: TargetFacts) => {
    const toCopy = closure.filter((p) => facts.missing.has(p.path));
    const bytes = toCopy.reduce((sum, p) => sum + p.narSize, 0);
    if (!counter) {
      if (handOff?.(facts, bytes)) {
        handedOff = true;
        return { toCopy: [], bytes: 0 };
      }
      pathsCopied = toCopy.length;
      bytesCopied = bytes;
      options.progress?.(`copy: ${toCopy.length} of ${closure.length} paths missing on the target (${(bytes / MiB).toFixed(1)} MiB)`);
      counter = copyProgress(toCopy, started, options.progress);
    } else {
      options.progress?.(`copy: resuming, the target still lacks ${toCopy.length} paths (${(bytes / MiB).toFixed(1)} MiB)`);
      counter.restart(toCopy);
    }
    return { toCopy, bytes };
  };
  for (;;) {
    try {
      let planned: ReturnType<typeof plan> | undefined;
      if (!first) {
        // The question (first, or again after a reconnect) and a small copy in one command:
        // nothing to decide about compression (too little to measure) and no path to stage.
        let bytesCallback: ((bytes: number) => void) | undefined;
        let wireCallback: ((bytes: number) => void) | undefined;
        const asked = await queryAndStream(
          session,
          closure,
          async (facts) => {
            if (!(await maySend())) return undefined;
            planned = plan(facts);
            if (handedOff) return undefined;
            const plain = fixed === "none" || (setting === "auto" && !auto && planned.bytes < PROBE_MIN_TOTAL);
            return plain && planned.toCopy.every((p) => p.narSize < stageAboveFor(facts.tools, options)) ? planned.toCopy : undefined;
          },
          {
            storeRoot: options.storeRoot,
            onBytes: (bytes) => (bytesCallback ??= counter!.narBytes(0))(bytes),
            onWire: (bytes) => (wireCallback ??= counter!.wire())(bytes),
            onAcked: (n) => counter!.registered(n),
          },
        );
        if (handedOff || withheld || asked.streamed || planned?.toCopy.length === 0) break;
        first = asked.facts;
      }
      const facts = first;
      first = undefined;
      if (!(await maySend())) break;
      const { toCopy, bytes } = planned ?? plan(facts);
      if (setting !== "auto") fixed = chooseCompression(setting, facts.tools);
      else if (!auto && bytes < PROBE_MIN_TOTAL) fixed ??= "none";
      else auto ??= new AutoCompression(chooseCompression("auto", facts.tools), options.progress);
      await sendAll(session, toCopy, facts.tools, fixed ?? auto!, counter!, options, resumedWithinPath);
      break;
    } catch (err) {
      if (!(err instanceof CopyInterrupted)) throw err;
      if (!options.reconnect || resumes >= MAX_RESUMES) {
        throw new ConnectionLostError(
          `${err.message}; what was registered on the target stays, and the next copy sends only the rest`,
          {
            step: "copy",
            host: session.target,
            hint: options.reconnect ? `the connection dropped ${resumes + 1} times; check the network to the target and run again` : "run the operation again",
          },
          { cause: err },
        );
      }
      resumes++;
      options.progress?.(`copy: ${err.message}; reconnecting to ${counter ? "resume" : "ask again"} (${resumes}/${MAX_RESUMES})`);
      session.close();
      session = await options.reconnect();
    }
  }
  counter?.finish();
  return {
    pathsTotal: closure.length,
    pathsCopied,
    bytesCopied,
    ...(withheld ? { withheld } : {}),
    wireBytes: counter?.wireBytes() ?? 0,
    compression: fixed ?? auto?.decided ?? "none",
    resumes,
    resumedWithinPath,
    seconds: (Date.now() - started) / 1000,
    session,
  };
}

/**
 * Sends the paths in order: runs of small paths streamed, large paths staged. With `auto`
 * still measuring, a run long enough for it (STREAM_PROBE) or the first PROBE_BYTES of a
 * staged path are a measured stretch (auto-compression.ts).
 */
async function sendAll(
  session: SshSession,
  paths: PathInfo[],
  tools: Set<string>,
  compression: Compression | AutoCompression,
  counter: CopyProgress,
  options: CopyOptions,
  resumedWithinPath: number[],
): Promise<void> {
  const auto = typeof compression === "string" ? undefined : compression;
  const next = (measured = true) => (typeof compression === "string" ? compression : compression.next(measured));
  const measuring = () => auto !== undefined && auto.decided === undefined;
  const stageAbove = stageAboveFor(tools, options);
  const staged = (stage: { resumedAt: number }, info: PathInfo) => {
    if (stage.resumedAt === 0) return;
    resumedWithinPath.push(stage.resumedAt);
    options.progress?.(`copy: resumed ${info.path} at ${(stage.resumedAt / MiB).toFixed(1)} of ${(info.narSize / MiB).toFixed(1)} MiB`);
  };
  let i = 0;
  // A staging file the target refused (left by an earlier copy, corrupted) is sent again once.
  const restarted = new Set<string>();
  const imported = async (info: PathInfo): Promise<boolean> => {
    try {
      await importStaged(session, info, options.storeRoot);
      return true;
    } catch (err) {
      if (!(err instanceof StagingFileRefused) || restarted.has(info.path)) throw err;
      restarted.add(info.path);
      options.progress?.(`copy: ${err.summary}; sending ${info.path} again from its start`);
      return false;
    }
  };
  while (i < paths.length) {
    const info = paths[i]!;
    if (info.narSize >= stageAbove) {
      const base = () => ({ storeRoot: options.storeRoot, onBytes: counter.narBytes(i), onWire: counter.wire() });
      let first = true;
      let complete = false;
      // Measured stretches of PROBE_BYTES while auto decides (at most two), then the rest.
      while (measuring() && !complete) {
        const probe = await stagePath(session, info, { ...base(), compression: next(), stopAfter: PROBE_BYTES });
        if (first) staged(probe, info);
        first = false;
        complete = probe.complete;
        // A stretch cut short by the end of the path (resumed near its end) measures start-up, not the link.
        if (!complete) auto!.measured(probe.narBytes / Math.max(probe.seconds, 0.001));
      }
      if (!complete) {
        const stage = await stagePath(session, info, { ...base(), compression: next() });
        if (first) staged(stage, info);
      }
      if (!(await imported(info))) continue;
      counter.registered(i + 1);
      i++;
      continue;
    }
    // A run of small paths, up to the next large one.
    let end = i;
    let runBytes = 0;
    while (end < paths.length && paths[end]!.narSize < stageAbove) runBytes += paths[end++]!.narSize;
    const first = i;
    const shape = next() === "none" ? STREAM_PROBE : TRIAL_PROBE;
    const probe = measuring() && runBytes >= shape.startBy + shape.span ? { ...shape, decide: (rate: number) => auto!.measured(rate) } : undefined;
    const { sent } = await streamPaths(session, paths.slice(i, end), {
      storeRoot: options.storeRoot,
      compression: next(probe !== undefined),
      onBytes: counter.narBytes(first),
      onWire: counter.wire(),
      onAcked: (n) => counter.registered(first + n),
      ...(probe ? { probe } : {}),
    });
    i += sent;
  }
  auto?.unmeasured();
}
