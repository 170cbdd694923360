// One streamed batch of a copy: local NARs framed as pipelined AddToStoreNar commands, maybe
// compressed, into `nix-store --serve --write` on the target over one exec channel; the
// copy's question of which paths the target lacks may go to that same nix-store first. The
// target acknowledges each path once it is registered; a lost connection is reported with the
// count acknowledged, so the caller can resume after them.
import { PassThrough, Transform, pipeline, type Readable } from "node:stream";
import { ConnectionLostError, NixosPulumiError } from "../errors";
import type { SshSession } from "../ssh";
import { shellQuote, tail } from "../ssh";
import type { PathInfo } from "../nix/closure";
import { compressStream, decompressCommand, type Compression } from "./compression";
import { localServe, narSource, type NarSource } from "./nar-source";
import { addToStoreNarHeader, hello, queryValidPaths, ReplyReader } from "./serve-protocol";
import { TOOLS_PROBE, toolsIn } from "./target-tools";
import type { TargetFacts } from "./options";
import { mib } from "../util/units";

/** The SSH connection dropped mid-copy; what the target registered before stays valid. */
export class CopyInterrupted extends Error {
  constructor(what: string, cause?: unknown) {
    super(`the SSH connection was lost during ${what}`, cause === undefined ? undefined : { cause });
  }
}

/**
 * What a failed exec of the copy means: the connection lost (CopyInterrupted, which the copy
 * resumes after), or the error itself. A channel may fail before ssh2 reports the connection
 * closed, so a session closed by now counts as lost too.
 */
export function interruptedBy(err: unknown, session: SshSession, what: string): unknown {
  return err instanceof ConnectionLostError || !session.isOpen ? new CopyInterrupted(what, err) : err;
}

export interface StreamOptions {
  storeRoot?: string | undefined;
  compression: Compression;
  /** NAR bytes read locally for this batch so far. */
  onBytes?: (bytes: number) => void;
  /** Bytes handed to the SSH channel so far (after compression). */
  onWire?: (bytes: number) => void;
  /** Paths of this batch the target acknowledged as registered so far. */
  onAcked?: (count: number) => void;
  /**
   * Measure this stream's NAR rate: over `span` NAR bytes or `seconds`, whichever comes
   * first, from when `startBy` NAR bytes were read (the first ones fill the channel's window
   * and wait for the target's store to start taking them). `decide` gets the rate (bytes/s);
   * when it returns true the stream ends after the path being read, so the rest can go
   * otherwise (compressed or not).
   */
  probe?: { startBy: number; span: number; seconds: number; decide: (rate: number) => boolean };
}

export interface StreamResult {
  wireBytes: number;
  /** Paths sent and registered: all of them, or fewer when the probe ended the stream early. */
  sent: number;
}

export function storeFlag(storeRoot?: string): string {
  return storeRoot ? ` --store ${shellQuote(storeRoot)}` : "";
}

/** Counts the bytes that pass (what goes onto the wire). */
export function wireCounter(onWire?: (bytes: number) => void): Transform & { bytes: () => number } {
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      onWire?.(bytes);
      done(null, chunk);
    },
  });
  return Object.assign(t, { bytes: () => bytes });
}

/** source → (compression) → counter, destroyed together on any error. */
export function compressedPipe(source: Readable, compression: Compression, onWire?: (bytes: number) => void) {
  const wire = wireCounter(onWire);
  const compress = compressStream(compression);
  const stages: NodeJS.ReadWriteStream[] = compress ? [compress, wire] : [wire];
  pipeline(source, ...(stages as [Transform]), () => undefined);
  return wire;
}

/** Measures the stream for `options.probe`: a callback for the NAR bytes read. */
function linkProbe(probe: StreamOptions["probe"], truncate: () => void) {
  let start: { at: number; bytes: number } | undefined;
  let decided = !probe;
  return (bytes: number) => {
    if (decided) return;
    if (bytes >= probe!.startBy) start ??= { at: performance.now(), bytes };
    if (!start) return;
    const seconds = (performance.now() - start.at) / 1000;
    if (bytes >= start.bytes + probe!.span || (seconds >= probe!.seconds && bytes > start.bytes)) {
      decided = true;
      if (probe!.decide((bytes - start.bytes) / Math.max(seconds, 0.001))) truncate();
    }
  };
}

export async function streamPaths(session: SshSession, paths: PathInfo[], options: StreamOptions): Promise<StreamResult> {
  const decompress = decompressCommand(options.compression);
  const command = `${decompress ? `${decompress} | ` : ""}nix-store${storeFlag(options.storeRoot)} --serve --write`;
  const { streamed } = await stream(session, command, options, { paths });
  return streamed!;
}

/**
 * A copy's question and its paths in one command: the target's tools (TOOLS_PROBE),
 * then `nix-store --serve --write` asked which of the closure's paths are valid
 * (QueryValidPaths, as nix-copy-closure asks) and, on the same stdin, sent the paths `choose`
 * picks from what it lacks, uncompressed. When `choose` picks none to send here (undefined:
 * the copy goes elsewhere), the command ends after the answer. `choose` may take its time
 * (the answer waits in the target's nix-store); when it throws, the command ends unsent and
 * the copy throws that error.
 */
export async function queryAndStream(
  session: SshSession,
  closure: PathInfo[],
  choose: Choose,
  options: Omit<StreamOptions, "compression" | "probe">,
): Promise<{ facts: TargetFacts; streamed?: StreamResult }> {
  const command = `${TOOLS_PROBE}; echo ${END_OF_TOOLS}; exec nix-store${storeFlag(options.storeRoot)} --serve --write`;
  return stream(session, command, { ...options, compression: "none" }, { closure, choose });
}

const END_OF_TOOLS = "+end";

type Choose = (facts: TargetFacts) => PathInfo[] | undefined | Promise<PathInfo[] | undefined>;
type Plan = { paths: PathInfo[] } | { closure: PathInfo[]; choose: Choose };

async function stream(session: SshSession, command: string, options: StreamOptions, plan: Plan): Promise<{ facts: TargetFacts; streamed?: StreamResult }> {
  let acked = 0;
  let refused: bigint | undefined;
  let protocolError: Error | undefined;
  let chooseError: unknown;
  let ended = false;
  let paths: PathInfo[] | undefined;
  let source: NarSource | undefined;
  let wire: ReturnType<typeof compressedPipe> | undefined;
  let facts: TargetFacts = { missing: new Set(), tools: new Set() };
  const probe = linkProbe(options.probe, () => source?.truncate());
  const reader = new ReplyReader((value) => {
    if (value === 1n) {
      acked++; // not inside `onAcked?.(…)`: without a callback its argument is never evaluated
      options.onAcked?.(acked);
    } else refused = value;
  });
  const stdin = new PassThrough();
  // Asking first, the local nix-store starts while the target answers (it is needed unless
  // the target lacks nothing, or the copy goes elsewhere).
  let early = "closure" in plan ? localServe() : undefined;
  early?.on("error", () => undefined);
  const send = (chosen: PathInfo[], start?: Buffer) => {
    paths = chosen;
    source = narSource(
      chosen,
      {
        ...(start ? { start } : {}),
        prefix: (i) => addToStoreNarHeader(chosen[i]!),
        onBytes: (bytes) => {
          probe(bytes);
          options.onBytes?.(bytes);
        },
      },
      early,
    );
    early = undefined;
    wire = compressedPipe(source.stream, options.compression, options.onWire);
    wire.pipe(stdin);
  };
  // Text lines (the tools) come before the serve protocol's bytes when the copy asks first.
  let text = "closure" in plan ? undefined : "";
  let toolLines = Buffer.alloc(0);
  const onStdout = (chunk: Buffer) => {
    if (text === undefined) {
      toolLines = Buffer.concat([toolLines, chunk]);
      const end = toolLines.indexOf(`${END_OF_TOOLS}\n`);
      if (end < 0) return;
      text = toolLines.subarray(0, end).toString("utf8");
      chunk = toolLines.subarray(end + END_OF_TOOLS.length + 1);
    }
    reader.push(chunk);
  };
  if ("paths" in plan) send(plan.paths, hello());
  else {
    const { closure, choose } = plan;
    stdin.write(Buffer.concat([hello(), queryValidPaths(closure.map((p) => p.path))]));
    reader.expectSet((valid) => {
      const have = new Set(valid);
      facts = { missing: new Set(closure.filter((p) => !have.has(p.path)).map((p) => p.path)), tools: toolsIn((text ?? "").split("\n")) };
      void Promise.resolve()
        .then(() => choose(facts))
        .then((chosen) => {
          if (ended) return; // the command is over (the connection dropped): nothing to send into
          if (chosen && chosen.length > 0) send(chosen);
          else stdin.end();
        })
        .catch((err: unknown) => {
          chooseError = err;
          stdin.end();
        });
    });
  }
  let result;
  let stderrTail = "";
  const what = () => (paths ? `the copy of ${paths.length} paths` : "the query of missing paths");
  try {
    result = await session.exec(command, {
      stdin,
      keep: 0,
      onStdout: (chunk) => {
        try {
          onStdout(chunk);
        } catch (err) {
          protocolError = err as Error;
        }
      },
      onStderr: (chunk) => {
        // `keep: 0` keeps nothing: hold the end of stderr for the error (a full /nix says so there).
        stderrTail = (stderrTail + chunk.toString("utf8")).slice(-8192);
      },
    });
  } catch (err) {
    throw interruptedBy(err, session, what());
  } finally {
    ended = true;
    source?.stop();
    wire?.destroy();
    early?.kill("SIGTERM");
  }
  const localError = await (source?.done ?? Promise.resolve()).then(() => undefined, (e: unknown) => e as Error);
  if (chooseError !== undefined) throw chooseError;
  if (protocolError) throw new NixosPulumiError(protocolError.message, { step: "copy", host: session.target });
  const sent = source?.count() ?? 0;
  if (result.code === 0 && acked === sent && refused === undefined && (text !== undefined || !("closure" in plan))) {
    return { facts, ...(source ? { streamed: { wireBytes: wire!.bytes(), sent } } : {}) };
  }
  if (localError) throw localError;
  if (result.code === null && result.signal === undefined) throw new CopyInterrupted(paths ? `${what()} (${acked} registered)` : what());
  if (!paths) {
    throw new NixosPulumiError(`asking the target which paths it lacks failed (exit ${result.code ?? result.signal})`, {
      step: "copy",
      host: session.target,
      output: tail(stderrTail || result.stderr),
    });
  }
  const missingBytes = paths.slice(acked).reduce((sum, p) => sum + p.narSize, 0);
  const full = /No space left on device/i.test(stderrTail);
  throw new NixosPulumiError(
    full
      ? `the target's /nix is full (No space left on device) after registering ${acked} of ${paths.length} paths; the ${paths.length - acked} paths not yet registered need ${mib(missingBytes)} MiB`
      : `nix-store --serve --write failed on the target after registering ${acked} of ${paths.length} paths (exit ${result.code ?? result.signal})`,
    {
      step: "copy",
      host: session.target,
      output: tail(stderrTail || result.stderr),
      hint: `the paths not yet registered need ${mib(missingBytes)} MiB in the target's /nix store (check df -h /nix) and a working nix-store there`,
    },
  );
}
