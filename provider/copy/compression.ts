// Compression of the copy stream: zstd or gzip, whichever the target can decompress, only
// when the measured link is slow enough for it to pay; never on a fast link, where the CPU
// it costs would slow the copy down.
import * as zlib from "node:zlib";
import type { Transform } from "node:stream";
import { NixosPulumiError } from "../errors";
import { MiB } from "../util/units";

export type CompressSetting = "auto" | "zstd" | "gzip" | "none";
export type Compression = "zstd" | "gzip" | "none";

/**
 * zstd -1 compresses several hundred MB/s per core, but the deployer also encrypts and the
 * target decompresses: it pays clearly below ~1.5x a 100 Mbit/s link, not on a gigabit one.
 */
const ZSTD_BELOW = 20 * MiB;
/** gzip -1 manages ~50 MB/s per core: it pays only on slower links. */
const GZIP_BELOW = 10 * MiB;

const zstdHere = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === "function";

/** Decides for `auto` from the link rate measured so far (bytes/s on the wire). */
export function chooseCompression(setting: CompressSetting, targetTools: Set<string>, linkRate?: number): Compression {
  if (setting !== "auto") {
    if (setting !== "none" && !targetTools.has(setting)) {
      throw new NixosPulumiError(`copy.compress is "${setting}", but the target has no \`${setting}\` in its PATH`, {
        step: "copy",
        hint: `install ${setting} on the target, or set copy.compress to "auto" (uses what the target has) or "none"`,
      });
    }
    if (setting === "zstd" && !zstdHere) {
      throw new NixosPulumiError(`copy.compress is "zstd", but this Node (${process.version}) has no zstd`, {
        step: "copy",
        hint: 'run the deployer with Node >= 22.15, or set copy.compress to "gzip" or "auto"',
      });
    }
    return setting;
  }
  if (linkRate === undefined) return "none";
  if (linkRate < ZSTD_BELOW && zstdHere && targetTools.has("zstd")) return "zstd";
  if (linkRate < GZIP_BELOW && targetTools.has("gzip")) return "gzip";
  return "none";
}

export function compressStream(compression: Compression): Transform | undefined {
  if (compression === "zstd") {
    const create = (zlib as unknown as { createZstdCompress: (o: object) => Transform }).createZstdCompress;
    const level = (zlib.constants as unknown as Record<string, number>)["ZSTD_c_compressionLevel"]!;
    return create({ params: { [level]: 1 } });
  }
  if (compression === "gzip") return zlib.createGzip({ level: 1 });
  return undefined;
}

/** The shell command on the target that undoes compressStream (empty for none). */
export function decompressCommand(compression: Compression): string {
  return compression === "none" ? "" : `${compression} -dc`;
}
