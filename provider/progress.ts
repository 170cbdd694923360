/**
 * Progress lines for long work (phase, paths/bytes copied, elapsed). The engine shows a
 * dynamic provider's stderr lines in `pulumi up` output as they come.
 */
export type Progress = (line: string) => void;

/** A progress reporter whose lines name the resource and the time since it started. */
export function progressFor(resourceName: string): Progress {
  const started = Date.now();
  return (line: string) => {
    const elapsed = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(`${resourceName} [${elapsed}s] ${line}\n`);
  };
}
