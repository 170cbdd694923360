// What the copy can use on the target, asked in the same command as the copy's first question:
// nix-store (required), the decompressors, util-linux's flock (the staged resume), AES.
import { TARGET_AES_PROBE } from "../ssh/cpu-aes";

/** Shell lines printing one `+<tool>` line per tool found; exits 127 without nix-store. */
export const TOOLS_PROBE =
  `command -v nix-store >/dev/null || { echo "nix-store not found on the target" >&2; exit 127; }; ` +
  `for t in zstd gzip; do command -v $t >/dev/null 2>&1 && echo "+$t"; done; ` +
  // The staged resume needs util-linux's `flock -w`; busybox's flock has no -w.
  `flock -w 1 / true >/dev/null 2>&1 && echo "+flock"; ` +
  // A copy's own connection offers AES-GCM first when both ends have AES instructions.
  `${TARGET_AES_PROBE}`;

/** The tools in TOOLS_PROBE's output lines. */
export function toolsIn(lines: string[]): Set<string> {
  return new Set(lines.filter((l) => l.startsWith("+")).map((l) => l.slice(1)));
}
