// Compression of the copy stream: zstd or gzip, whichever the target can decompress. `auto`
// (auto-compression.ts) compresses only where a compressed stretch of the stream measurably
// moves NARs faster than a plain one: on a fast link, or to a target whose CPU is the limit,
// the CPU it costs would slow the copy down.
import * as zlib from "node:zlib";
import type { Transform } from "node:stream";
import { NixosPulumiError } from "../errors";

export type CompressSetting = "auto" | "zstd" | "gzip" | "none";
export type Compression = "zstd" | "gzip" | "none";

const zstdHere = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === "function";

/**
 * An explicit setting, checked against what both ends have; for `auto`, the compression it
 * would try: zstd where both ends have it (Node >= 22.15 here), else gzip, else none.
 */
export function chooseCompression(setting: CompressSetting, targetTools: Set<string>): Compression {
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
  if (zstdHere && targetTools.has("zstd")) return "zstd";
  if (targetTools.has("gzip")) return "gzip";
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
