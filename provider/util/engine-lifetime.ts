// The provider's work ends with the Pulumi engine that started it. The engine runs the
// dynamic provider as a child process in a process group of its own, with a pipe on its
// stdin, and reads its stderr (pulumi v3.259 sdk/go/common/resource/plugin/plugin.go:
// cmd.StdinPipe, RegisterProcessGroup; Kill sends SIGINT to the group, SIGKILL 5 s later).
// When the CLI dies (SIGKILL of a cancelled CI job, a closed laptop) the pipe reaches EOF and
// no signal reaches the provider. Either way nobody will read
// this provider's results: copies stop, an activation not yet started is not started, the
// deploy lock is released, and the process exits. An activation already started runs on,
// detached on the machine, and leaves its verdict there for the next run.
import { fstatSync } from "node:fs";

export type EngineGoneCleanup = (reason: string) => Promise<void> | void;

const controller = new AbortController();
/** Aborted (its reason says why) once the engine that started this process is gone. */
export const engineGone: AbortSignal = controller.signal;

const cleanups = new Set<EngineGoneCleanup>();
/** The engine gives a plugin 5 s between SIGINT and SIGKILL. */
const CLEANUP_MS = 4000;

/** Runs `cleanup` when the engine goes away (at once if it has); returns its unregistration. */
export function whenEngineGone(cleanup: EngineGoneCleanup): () => void {
  if (engineGone.aborted) {
    void cleanup(String(engineGone.reason));
    return () => {};
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/**
 * The engine is gone: run the cleanups (bounded by CLEANUP_MS), then `exit`. Exported for
 * the tests; the provider process calls it from watchEngine's signals.
 */
export async function engineWentAway(reason: string, exit: (code: number) => void = (code) => process.exit(code)): Promise<void> {
  if (engineGone.aborted) return;
  controller.abort(reason);
  const running = [...cleanups].map((cleanup) => Promise.resolve().then(() => cleanup(reason)).catch(() => undefined));
  cleanups.clear();
  await Promise.race([Promise.all(running), new Promise((r) => setTimeout(r, CLEANUP_MS).unref())]);
  exit(running.length > 0 ? 1 : 0);
}

let watching = false;

function stdinIsPipe(): boolean {
  try {
    return fstatSync(0).isFIFO();
  } catch {
    return false;
  }
}

/** True in the process Pulumi starts for a dynamic provider (`@pulumi/pulumi/cmd/dynamic-provider`). */
function isDynamicProviderProcess(): boolean {
  const main = require.main?.filename ?? process.argv[1] ?? "";
  return /@pulumi[\\/]pulumi[\\/]cmd[\\/]dynamic-provider[\\/]/.test(main);
}

/**
 * In the dynamic provider's process only (a test or a program loading the same modules is
 * left alone): ends the work when the engine's stdin pipe closes, on SIGINT/SIGTERM/SIGHUP,
 * and when its stderr pipe breaks. Safe to call more than once.
 */
export function watchEngine(): void {
  if (watching || !isDynamicProviderProcess()) return;
  watching = true;
  const gone = (reason: string) => void engineWentAway(reason);
  // The engine's end of the pipe is held by the CLI alone: EOF means it exited.
  if (stdinIsPipe()) {
    process.stdin.on("end", () => gone("the Pulumi CLI that started this provider exited"));
    process.stdin.on("error", () => gone("the Pulumi CLI that started this provider exited"));
    process.stdin.resume();
  }
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => gone(`the provider was stopped (${signal})`));
  process.stderr.on("error", () => gone("the Pulumi CLI stopped reading this provider's output"));
}
