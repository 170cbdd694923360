// A large path copied through a staging file on the target, so a cut copy resumes at the
// byte it reached instead of starting the path over: its NAR is appended to
// <store root>/nix/var/nixos-pulumi/copy-staging/<name>.nar (from the offset the target
// reports), then imported from that file with one AddToStoreNar and the file removed.
import { PassThrough } from "node:stream";
import { NixosPulumiError } from "../errors";
import type { SshSession } from "../ssh";
import { shellQuote, tail } from "../ssh";
import { guarded } from "../ssh/private-paths";
import type { PathInfo } from "../nix/closure";
import { decompressCommand, type Compression } from "./compression";
import { compressedPipe, CopyInterrupted, interruptedBy, storeFlag } from "./stream";
import { narSource } from "./nar-source";
import { addToStoreNarHeader, hello, ReplyReader } from "./serve-protocol";
import { mib } from "../util/units";

export interface StageOptions {
  storeRoot?: string | undefined;
  compression: Compression;
  /** Stop after this many NAR bytes were sent (to measure the link), leaving the rest staged. */
  stopAfter?: number;
  onBytes?: (bytes: number) => void;
  onWire?: (bytes: number) => void;
}

export interface StageResult {
  /** Bytes of the NAR in the staging file when the target had it before this call. */
  resumedAt: number;
  complete: boolean;
  /** NAR bytes this call sent (before compression). */
  narBytes: number;
  wireBytes: number;
  seconds: number;
}

export function stagingFile(info: PathInfo, storeRoot?: string): string {
  const name = info.path.slice(info.path.lastIndexOf("/") + 1);
  return `${storeRoot ?? ""}/nix/var/nixos-pulumi/copy-staging/${name}.nar`;
}

/** Appends the rest of the path's NAR to its staging file; complete when it holds it all. */
export async function stagePath(session: SshSession, info: PathInfo, options: StageOptions): Promise<StageResult> {
  const file = shellQuote(stagingFile(info, options.storeRoot));
  const dir = shellQuote(stagingFile(info, options.storeRoot).replace(/\/[^/]*$/, ""));
  const writer = decompressCommand(options.compression) || "cat";
  // The lock waits for a writer of an earlier, cut connection to finish (sshd may not have
  // noticed the cut yet); after a short wait it is killed: what it appended is a prefix.
  // The staging directory is root's alone (0700): no other account can plant or read a NAR there.
  const script = guarded([
    `np_private_dir ${dir} && exec 9>>${file}.lock || exit 1`,
    `flock -w 3 9 || { kill -9 "$(cat ${file}.pid 2>/dev/null)" 2>/dev/null; flock 9; }`,
    `size=$(stat -c %s ${file} 2>/dev/null || echo 0)`,
    `if [ "$size" -gt ${info.narSize} ]; then : >${file}; size=0; fi`,
    `echo $$ >${file}.pid; echo "$size"`,
    `exec ${writer} >>${file}`,
  ].join("\n"));

  const input = new PassThrough();
  let offsetLine = "";
  let offset: number | undefined;
  let stopped = false;
  let sent = 0;
  let source: ReturnType<typeof narSource> | undefined;
  let wire: ReturnType<typeof compressedPipe> | undefined;
  const started = Date.now();
  const begin = (from: number) => {
    offset = from;
    if (from >= info.narSize) return input.end();
    source = narSource([info], {
      skip: from,
      onBytes: (bytes) => {
        sent = bytes - from;
        options.onBytes?.(bytes);
        if (options.stopAfter !== undefined && bytes - from >= options.stopAfter && !stopped) {
          // Cut, not unpiped: a compressed stretch must end as a whole stream, or the
          // target's decompressor fails on a truncated one ("gzip: unexpected end of file").
          stopped = true;
          source?.cut();
        }
      },
    });
    wire = compressedPipe(source.stream, options.compression, options.onWire);
    wire.pipe(input);
  };
  let result;
  try {
    result = await session.exec(script, {
      stdin: input,
      onStdout: (chunk) => {
        if (offset !== undefined) return;
        offsetLine += chunk.toString();
        if (offsetLine.includes("\n")) begin(Number(offsetLine.trim()));
      },
    });
  } catch (err) {
    throw interruptedBy(err, session, `the staged copy of ${info.path}`);
  } finally {
    source?.stop();
    input.destroy();
  }
  if (result.code === null && result.signal === undefined) throw new CopyInterrupted(`the staged copy of ${info.path}`);
  if (result.code !== 0 || offset === undefined) {
    throw new NixosPulumiError(`staging ${info.path} on the target failed (exit ${result.code ?? result.signal})`, {
      step: "copy",
      host: session.target,
      output: tail(result.stderr),
      hint: `it needs ${mib(info.narSize)} MiB free in the target's /nix (twice that while it is imported)`,
    });
  }
  if (!stopped && source) {
    const localError = await source.done.then(() => undefined, (e: unknown) => e as Error);
    if (localError) throw localError;
  }
  return { resumedAt: offset, complete: !stopped, narBytes: sent, wireBytes: wire?.bytes() ?? 0, seconds: (Date.now() - started) / 1000 };
}

/** Nix's refusals of a NAR whose bytes are not the path's (nix-store --serve --write, 2.8 to 2.34). */
const REFUSED_NAR = /(hash|size) mismatch importing path|bad archive|not a valid Nix archive|doesn't look like a Nix archive/i;

/** The staging file did not hold the path's NAR; it was removed and the path starts over. */
export class StagingFileRefused extends NixosPulumiError {
  constructor(path: string, host: string, output: string) {
    super(`the target refused the staged ${path} (its staging file did not hold the path's bytes); the file was removed`, {
      step: "copy",
      host,
      output,
      hint: "run `pulumi up` again: the path is sent again from its start",
    });
  }
}

/** Registers the fully staged path from its file (one AddToStoreNar), then removes the file. */
export async function importStaged(session: SshSession, info: PathInfo, storeRoot?: string): Promise<void> {
  const file = shellQuote(stagingFile(info, storeRoot));
  const header = Buffer.concat([hello(), addToStoreNarHeader(info)]);
  let acked = false;
  const reader = new ReplyReader((v) => (acked = v === 1n));
  const script = [
    `size=$(stat -c %s ${file} 2>/dev/null || echo 0)`,
    `[ "$size" = ${info.narSize} ] || { echo "the staging file ${file} holds $size of ${info.narSize} bytes" >&2; exit 3; }`,
    `{ head -c ${header.length}; cat ${file}; } | nix-store${storeFlag(storeRoot)} --serve --write || exit $?`,
    `rm -f ${file} ${file}.pid ${file}.lock`,
  ].join("\n");
  let stderr = "";
  const result = await session.exec(script, { stdin: header, keep: 0, onStdout: (c) => reader.push(c), onStderr: (c) => (stderr = (stderr + c.toString()).slice(-8000)) });
  if (result.code === null && result.signal === undefined) throw new CopyInterrupted(`the import of ${info.path}`);
  if (result.code !== 0 || !acked) {
    // A staging file of the wrong size, or whose content Nix refused (a NAR of other bytes
    // than the path's hash): removed, so the path starts over instead of failing every copy.
    if (result.code === 3 || REFUSED_NAR.test(stderr)) {
      await session.exec(`rm -f ${file}`);
      throw new StagingFileRefused(info.path, session.target, tail(stderr));
    }
    throw new NixosPulumiError(`importing the staged ${info.path} on the target failed (exit ${result.code ?? result.signal})`, {
      step: "copy",
      host: session.target,
      output: tail(stderr),
      hint: `it needs ${mib(info.narSize)} MiB free in the target's /nix (check df -h /nix)`,
    });
  }
}
