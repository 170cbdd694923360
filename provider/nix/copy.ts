// Copies a closure to a target: ask the target once which paths it lacks, then stream
// `nix-store --export` of just those into `nix-store --import` over the SSH session.
import { Transform } from "node:stream";
import { execa } from "execa";
import { NixosPulumiError } from "../errors";
import type { SshSession } from "../ssh";
import { shellQuote, tail } from "../ssh";
import type { Progress } from "../progress";
import { closureOf, type ClosurePath } from "./closure";

export interface CopyOptions {
  /** Copy into the store under this root (e.g. "/mnt" during an install). */
  storeRoot?: string;
  progress?: Progress;
}

export interface CopyResult {
  pathsTotal: number;
  pathsCopied: number;
  bytesCopied: number;
  seconds: number;
}

const MiB = 1024 * 1024;
const BATCH_BYTES = MiB;

function storeFlag(storeRoot?: string): string {
  return storeRoot ? ` --store ${shellQuote(storeRoot)}` : "";
}

/** One round trip: the paths of `paths` that are not valid in the target's store. */
export async function missingOnTarget(session: SshSession, paths: string[], storeRoot?: string): Promise<string[]> {
  const out = await session.execOk(
    `command -v nix-store >/dev/null || { echo "nix-store not found on the target" >&2; exit 127; }; xargs -r nix-store${storeFlag(storeRoot)} --check-validity --print-invalid`,
    "copy: query missing paths",
    { stdin: paths.join("\n") + "\n" },
  );
  return out.split("\n").filter(Boolean);
}

export async function copyClosure(session: SshSession, storePath: string, options: CopyOptions = {}): Promise<CopyResult> {
  const started = Date.now();
  const closure = await closureOf(storePath);
  const missing = new Set(await missingOnTarget(session, closure.map((p) => p.path), options.storeRoot));
  const toCopy = closure.filter((p) => missing.has(p.path));
  const totalBytes = toCopy.reduce((sum, p) => sum + p.narSize, 0);
  options.progress?.(`copy: ${toCopy.length} of ${closure.length} paths missing on the target (${(totalBytes / MiB).toFixed(1)} MiB)`);
  if (toCopy.length === 0) return { pathsTotal: closure.length, pathsCopied: 0, bytesCopied: 0, seconds: 0 };

  const counter = progressCounter(toCopy, started, options.progress);
  const exporter = execa("nix-store", ["--export", ...toCopy.map((p) => p.path)], { stdin: "ignore", stdout: "pipe", stderr: "pipe", buffer: { stdout: false } });
  const exportErrors: string[] = [];
  exporter.stderr?.on("data", (d: Buffer) => exportErrors.push(d.toString()));
  const importing = session.exec(`nix-store${storeFlag(options.storeRoot)} --import >/dev/null`, { stdin: exporter.stdout!.pipe(counter.stream) });
  const [imported, exported] = await Promise.all([importing, exporter.catch((e: unknown) => e as { exitCode?: number })]);
  if ((exported as { exitCode?: number }).exitCode !== 0) {
    throw new NixosPulumiError("nix-store --export failed on this machine", { step: "copy", output: exportErrors.join("") });
  }
  if (imported.code !== 0) {
    throw new NixosPulumiError(`nix-store --import failed on the target (exit ${imported.code ?? imported.signal})`, {
      step: "copy",
      host: session.target,
      output: tail(imported.stderr),
      hint: "check free space in the target's /nix (df -h /nix) and that nix-store works there",
    });
  }
  counter.finish();
  return { pathsTotal: closure.length, pathsCopied: toCopy.length, bytesCopied: counter.bytes(), seconds: (Date.now() - started) / 1000 };
}

/** Counts streamed bytes and reports paths/bytes/rate at most once a second. */
function progressCounter(paths: ClosurePath[], started: number, progress?: Progress) {
  const totalBytes = paths.reduce((sum, p) => sum + p.narSize, 0);
  let bytes = 0;
  let lastReport = 0;
  let reportedBytes = -1;
  const report = () => {
    if (bytes === reportedBytes) return;
    reportedBytes = bytes;
    let done = 0;
    for (let acc = 0; done < paths.length && acc + paths[done]!.narSize <= bytes; done++) acc += paths[done]!.narSize;
    const seconds = (Date.now() - started) / 1000;
    progress?.(
      `copy: ${done}/${paths.length} paths, ${(bytes / MiB).toFixed(1)}/${(totalBytes / MiB).toFixed(1)} MiB, ` +
        `${(bytes / MiB / Math.max(seconds, 0.001)).toFixed(1)} MiB/s, ${seconds.toFixed(1)}s`,
    );
  };
  // ssh2 handles a few large writes much faster than many 64 KiB pipe reads: batch them.
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      batch.push(chunk);
      batchBytes += chunk.length;
      if (Date.now() - lastReport >= 1000) {
        lastReport = Date.now();
        report();
      }
      if (batchBytes < BATCH_BYTES) return done();
      const out = Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      done(null, out);
    },
    flush(done) {
      done(null, batchBytes > 0 ? Buffer.concat(batch, batchBytes) : undefined);
    },
  });
  return { stream, bytes: () => bytes, finish: report };
}
