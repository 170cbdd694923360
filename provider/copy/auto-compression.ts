// copy.compress "auto": whether compression pays is measured, not guessed from the link rate.
// The stream starts plain and its NAR rate is measured; when it is slow enough that
// compression might pay, the next stretch goes compressed and is measured the same way (NAR
// bytes taken in per second, so it counts the deployer compressing, the link, and the target
// decompressing next to its import); the faster of the two carries the rest. A target whose
// CPU is the limit (a QEMU guest under TCG) gains nothing from fewer bytes on the wire and
// pays for decompressing them: there the plain stream wins.
import type { Compression } from "./compression";
import { MiB } from "../util/units";

/** A plain stream faster than this goes on plain: no compressor keeps up with it on one core. */
export const TRY_BELOW = 40 * MiB;
/**
 * The compressed stretch must move NARs this much faster to be kept. A short stretch flatters
 * compression where the target's CPU is the limit: in the QEMU installer (one emulated CPU)
 * gzip stretches measured 1.19x and 1.35x the plain rate, and the copies that kept gzip took
 * 23.5 and 24.3 s where one that stayed plain took 16.1 s (bench/install.ts, 3 pairs). On a
 * link-limited 100 Mbit/s proxy the gain is the compression ratio, ~2x for real files.
 */
export const GAIN = 1.5;

export class AutoCompression {
  private plainRate: number | undefined;
  /** The choice once made; until then the copy is measuring. */
  decided: Compression | undefined;

  /** `candidate`: what auto would compress with here (chooseCompression); "none" decides at once. */
  constructor(
    private readonly candidate: Compression,
    private readonly log?: (line: string) => void,
  ) {
    if (candidate === "none") this.decided = "none";
  }

  /**
   * What the next stretch is sent with: the choice, or the stretch being measured. A stretch
   * that will not be measured (`measured` false: too short) goes plain while the choice is
   * open: nothing is compressed unmeasured.
   */
  next(measured = true): Compression {
    return this.decided ?? (this.plainRate === undefined || !measured ? "none" : this.candidate);
  }

  /**
   * The NAR rate (bytes/s) of a stretch sent with next(). True when the stream should end
   * after the path being read, so the rest goes differently.
   */
  measured(rate: number): boolean {
    if (this.decided) return false;
    const mibs = (r: number) => (r / MiB).toFixed(1);
    if (this.plainRate === undefined) {
      this.plainRate = rate;
      if (rate >= TRY_BELOW) {
        this.decided = "none";
        this.log?.(`copy: link measured at ${mibs(rate)} MiB/s uncompressed; compression: none`);
        return false;
      }
      this.log?.(`copy: link measured at ${mibs(rate)} MiB/s uncompressed; measuring ${this.candidate}`);
      return true;
    }
    const keep = rate > this.plainRate * GAIN;
    this.decided = keep ? this.candidate : "none";
    this.log?.(`copy: ${this.candidate} took NARs in at ${mibs(rate)} MiB/s, uncompressed ${mibs(this.plainRate)} MiB/s; compression: ${this.decided}`);
    return !keep;
  }

  /**
   * The copy ended while the compressed stretch was still to be measured (what was left after
   * the plain one was too little to measure): everything went uncompressed.
   */
  unmeasured(): void {
    if (this.decided) return;
    this.decided = "none";
    if (this.plainRate !== undefined) this.log?.(`copy: too little was left to measure ${this.candidate}; compression: none`);
  }
}
