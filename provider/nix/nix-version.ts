// The version of the `nix` on PATH, asked once per PATH in a process: what a command line
// may carry depends on it (e.g. `nix path-info --json-format`, Nix >= 2.33).
import { runNix } from "./run-nix";

export interface NixVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

const known = new Map<string, Promise<NixVersion>>();

/** "nix (Nix) 2.34.8" (also "nix (Nix) 2.26.3pre…", "nix (Determinate Nix 3.x) 2.30.1") to its numbers. */
export function parseNixVersion(output: string): NixVersion {
  const match = /\(.*?\)\s+(\d+)\.(\d+)(?:\.(\d+))?/.exec(output) ?? /(\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!match) throw new Error(`cannot read a version from \`nix --version\`: "${output.trim()}"`);
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0), text: output.trim() };
}

export function atLeast(version: NixVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor);
}

/** The local Nix's version (the `nix` PATH finds now). */
export function localNixVersion(): Promise<NixVersion> {
  const key = process.env["PATH"] ?? "";
  let result = known.get(key);
  if (!result) {
    result = runNix("nix", ["--version"], "nix", "install Nix on this machine (the provider runs its nix commands)").then(parseNixVersion);
    known.set(key, result);
    result.catch(() => known.delete(key));
  }
  return result;
}
