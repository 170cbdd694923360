// NARs of local store paths from one local `nix-store --serve` (pipelined DumpStorePath, no
// re-hash), framed for the target by the caller: a prefix before each path's NAR.
import { spawn, type ChildProcess } from "node:child_process";
import { Transform, type TransformCallback } from "node:stream";
import { NixosPulumiError } from "../errors";
import type { PathInfo } from "../nix/closure";
import { dumpStorePath, hello } from "./serve-protocol";

export interface NarSourceOptions {
  /** Bytes written before path i's NAR (e.g. an AddToStoreNar header). */
  prefix?: (index: number) => Buffer | undefined;
  /** Bytes written once before everything (e.g. the serve hello). */
  start?: Buffer;
  /** Leave out the first `skip` bytes of the first path's NAR (a resumed staged copy). */
  skip?: number;
  /** NAR bytes read so far (including skipped ones). */
  onBytes?: (bytes: number) => void;
}

export interface NarSource {
  stream: Transform;
  /** Ends the stream after the path being read now: the rest of the paths are left out. */
  truncate(): void;
  /** How many paths the stream carries (all, or up to where it was truncated). */
  count(): number;
  /**
   * Ends the stream where it is, inside a NAR (a staged path's stretch): what was read goes
   * on and the stream ends cleanly, so a compressor behind it finishes its own stream.
   */
  cut(): void;
  /** Ends the local nix-store process (idempotent). */
  stop(): void;
  /** Resolves when every NAR was read, rejects with nix-store's error otherwise. */
  done: Promise<void>;
}

/** The local `nix-store --serve` a NarSource reads from; started ahead when the caller can. */
export function localServe(): ChildProcess {
  return spawn("nix-store", ["--serve"], { stdio: ["pipe", "pipe", "pipe"] });
}

export function narSource(paths: PathInfo[], options: NarSourceOptions = {}, child: ChildProcess = localServe()): NarSource {
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  child.stdin!.on("error", () => undefined);
  child.stdin!.end(Buffer.concat([hello(), ...paths.map((p) => dumpStorePath(p.path))]));

  let greeting = 16;
  let index = -1;
  let limit = paths.length;
  let left = 0;
  let skip = options.skip ?? 0;
  let bytes = 0;
  // Pieces of the pipe's reads go on as they are, never copied into larger batches: every
  // copied byte is garbage the GC reclaims only in bulk, and the deployer's peak RSS grows
  // with it (bench/copy.ts, memory).
  const pending: Buffer[] = options.start ? [options.start] : [];
  const add = (b: Buffer) => pending.push(b);
  const flush = (t: Transform) => {
    for (const b of pending) t.push(b);
    pending.length = 0;
  };
  const nextPath = () => {
    index++;
    if (index >= limit) return;
    left = paths[index]!.narSize;
    const prefix = options.prefix?.(index);
    if (prefix) add(prefix);
  };
  nextPath();

  const stream = new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      if (greeting > 0) {
        const take = Math.min(greeting, chunk.length);
        greeting -= take;
        chunk = chunk.subarray(take);
      }
      while (chunk.length > 0) {
        if (index >= limit) {
          if (limit < paths.length) break; // truncated: the rest belongs to paths left out
          return callback(new Error("nix-store --serve sent more than the NARs asked for"));
        }
        const take = Math.min(left, chunk.length);
        const piece = chunk.subarray(0, take);
        chunk = chunk.subarray(take);
        left -= take;
        bytes += take;
        if (skip >= piece.length) skip -= piece.length;
        else {
          add(skip > 0 ? piece.subarray(skip) : piece);
          skip = 0;
        }
        if (left === 0) nextPath();
      }
      options.onBytes?.(bytes);
      flush(this);
      if (index >= limit && limit < paths.length) {
        endEarly();
        this.push(null);
      }
      callback();
    },
    flush(callback: TransformCallback) {
      if (index < limit && !cutShort) return callback(new Error(`nix-store --serve ended after ${index} of ${limit} NARs`));
      flush(this);
      callback();
    },
  });
  child.stdout!.pipe(stream);
  const endEarly = () => {
    child.stdout!.unpipe(stream);
    stop();
  };

  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (err) => reject(new NixosPulumiError(`cannot run nix-store on this machine: ${err.message}`, { step: "copy" })));
    child.on("close", (code, signal) => {
      if (code === 0 || stopped) return resolve();
      reject(new NixosPulumiError(`nix-store --serve on this machine failed (exit ${code ?? signal})`, { step: "copy", output: stderr.trim() }));
    });
  });
  done.catch(() => undefined);
  let stopped = false;
  let cutShort = false;
  const stop = () => {
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  };
  return {
    stream,
    done,
    stop,
    truncate: () => {
      limit = Math.min(limit, index + 1);
    },
    count: () => limit,
    cut: () => {
      if (cutShort) return;
      cutShort = true;
      endEarly();
      stream.end();
    },
  };
}
