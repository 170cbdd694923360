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

/** The shell test for the same on a target (prints +aes when it has them). */
export const TARGET_AES_PROBE = "grep -Eq '^(flags|Features)[[:space:]]*:(.*[[:space:]])?aes([[:space:]]|$)' /proc/cpuinfo 2>/dev/null && echo +aes";
