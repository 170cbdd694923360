// Progress of a copy across its batches and resumed attempts: paths registered, NAR bytes
// sent, bytes on the wire (after compression), rate; one line at most once a second.
import type { Progress } from "../progress";
import type { PathInfo } from "../nix/closure";
import { MiB } from "../util/units";


export interface CopyProgress {
  /** A new attempt after a reconnect: `paths` is what the target still lacks. */
  restart(paths: PathInfo[]): void;
  /** A callback for the NAR bytes of a batch starting at index `first` of the attempt's list. */
  narBytes(first: number): (bytes: number) => void;
  /** A callback for the bytes one channel put on the wire (each call: a new channel). */
  wire(): (bytes: number) => void;
  /** `count` paths of the attempt's list are registered on the target. */
  registered(count: number): void;
  wireBytes(): number;
  finish(): void;
}

export function copyProgress(initial: PathInfo[], started: number, progress?: Progress): CopyProgress {
  const totalPaths = initial.length;
  const totalBytes = initial.reduce((sum, p) => sum + p.narSize, 0);
  let paths = initial;
  let offsets: number[] = [];
  let pathsBefore = 0; // registered in earlier attempts
  let bytesBefore = 0;
  let registered = 0;
  let sent = 0;
  let wire = 0;
  let lastReport = 0;
  let lastShown = ""; // what the last line said (paths and bytes), so `finish` does not repeat it
  const index = (list: PathInfo[]) => {
    offsets = [];
    let acc = 0;
    for (const p of list) {
      offsets.push(acc);
      acc += p.narSize;
    }
  };
  index(paths);
  const report = (force = false) => {
    if (!progress || (!force && Date.now() - lastReport < 1000)) return;
    const shown = `${pathsBefore + registered}/${sent}`;
    if (force && shown === lastShown) return;
    lastShown = shown;
    lastReport = Date.now();
    const seconds = (Date.now() - started) / 1000;
    const onWire = wire < sent * 0.95 ? `, ${(wire / MiB).toFixed(1)} MiB on the wire` : "";
    progress(
      `copy: ${pathsBefore + registered}/${totalPaths} paths, ${(sent / MiB).toFixed(1)}/${(totalBytes / MiB).toFixed(1)} MiB${onWire}, ` +
        `${(sent / MiB / Math.max(seconds, 0.001)).toFixed(1)} MiB/s, ${seconds.toFixed(1)}s`,
    );
  };
  return {
    restart(next) {
      pathsBefore = totalPaths - next.length;
      bytesBefore = totalBytes - next.reduce((sum, p) => sum + p.narSize, 0);
      paths = next;
      registered = 0;
      sent = bytesBefore;
      index(paths);
    },
    narBytes(first) {
      const base = offsets[first] ?? 0;
      return (bytes) => {
        sent = Math.max(sent, bytesBefore + base + bytes);
        report();
      };
    },
    wire() {
      let last = 0;
      return (bytes) => {
        wire += bytes - last;
        last = bytes;
      };
    },
    registered(count) {
      registered = Math.min(count, paths.length);
    },
    wireBytes: () => wire,
    finish: () => {
      sent = totalBytes;
      registered = paths.length;
      report(true);
    },
  };
}
