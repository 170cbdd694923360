import { readFileSync } from "node:fs";

/**
 * Whether this machine's CPU has AES instructions: x86's `aes` flag or arm64's `aes` feature
 * in /proc/cpuinfo. Without /proc (macOS: Apple silicon and Intel Macs all have them), yes.
 */
export function localCpuHasAes(cpuinfo = "/proc/cpuinfo"): boolean {
  let text: string;
  try {
    text = readFileSync(cpuinfo, "utf8");
  } catch {
    return process.platform === "darwin";
  }
  return /^(flags|Features)\s*:.*\baes\b/m.test(text);
}

/**
 * The shell test for the same on a target (prints +aes when it has them): the first flags or
 * Features line (every CPU lists the same), read by the shell itself, not grep (a process
 * costs 10-30 ms on a busy machine, and the copy's question waits for this).
 */
export const TARGET_AES_PROBE =
  '{ while IFS= read -r np_cl; do case "$np_cl" in flags*:*|Features*:*) case " ${np_cl#*:} " in *[[:space:]]aes[[:space:]]*) echo +aes ;; esac; break ;; esac; done < /proc/cpuinfo; } 2>/dev/null';
