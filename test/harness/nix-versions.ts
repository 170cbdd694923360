// Real Nix of several versions for the matrix tests: bookworm's 2.8 is this machine's own
// /usr/bin/nix (its wrappers only exec it); trixie's and sid's run from roots scripts/nix-versions.sh (called by
// scripts/setup.sh) keeps in $NIXOS_PULUMI_CACHE/nix-versions/<suite>/, through wrappers
// (bin/nix, bin/nix-store, ...) that put the root's /usr in place of this machine's in a
// private mount namespace. All share this machine's /nix (the database schema is 10 in all
// three; 2.26+ only add a SchemaMigrations table 2.8 ignores).
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

export interface NixUnderTest {
  /** "2.8", "2.26", "2.34": major.minor, for test names. */
  name: string;
  /** The Debian suite it comes from. */
  suite: string;
  /** What its `nix --version` says. */
  version: string;
  /** Its wrapper directory, to put first in PATH (this machine's 2.8 has one too, for the stderr log). */
  bin: string;
  /** A test host's nixBin: the wrappers; undefined for this machine's own Nix, which hosts have already. */
  targetBin?: string;
}

const CACHE = process.env["NIXOS_PULUMI_CACHE"] ?? "/var/cache/nixos-pulumi";
const SUITES = ["bookworm", "trixie", "sid"];

function shortName(version: string): string {
  const m = /(\d+)\.(\d+)/.exec(version);
  if (!m) throw new Error(`cannot read a Nix version from "${version}"`);
  return `${m[1]}.${m[2]}`;
}

let all: NixUnderTest[] | undefined;

/** Every Nix of the matrix, oldest first. Throws (no skip) when a root is missing. */
export function nixVersions(): NixUnderTest[] {
  if (all) return all;
  const list: NixUnderTest[] = [];
  for (const suite of SUITES) {
    const dir = path.join(CACHE, "nix-versions", suite);
    const built = suite === "bookworm" || existsSync(path.join(dir, "ready"));
    if (!built || !existsSync(path.join(dir, "version")) || !existsSync(path.join(dir, "bin", "nix"))) {
      throw new Error(`Nix of Debian ${suite} is not in ${dir}: run scripts/setup.sh (it calls scripts/nix-versions.sh)`);
    }
    const version = readFileSync(path.join(dir, "version"), "utf8").trim();
    const bin = path.join(dir, "bin");
    list.push({ name: shortName(version), suite, version, bin, ...(suite === "bookworm" ? {} : { targetBin: bin }) });
  }
  all = list;
  return list;
}

/** The oldest and the newest Nix of the matrix, and the one between. */
export function matrixEnds(): { oldest: NixUnderTest; middle: NixUnderTest; newest: NixUnderTest } {
  const list = nixVersions();
  return { oldest: list[0]!, middle: list[1]!, newest: list[list.length - 1]! };
}

/**
 * Runs fn with `nixUnderTest` as this process's Nix (first in PATH: the provider's nix calls,
 * and the Pulumi CLI and provider processes started meanwhile, find it), then restores PATH.
 * With `stderrLog`, its wrappers also append each call's command line and stderr there.
 */
export async function withDeployerNix<T>(nixUnderTest: NixUnderTest, fn: () => Promise<T>, stderrLog?: string): Promise<T> {
  const saved = { PATH: process.env["PATH"], LOG: process.env["NIX_MATRIX_STDERR_LOG"] };
  process.env["PATH"] = `${nixUnderTest.bin}:${saved.PATH}`;
  if (stderrLog) process.env["NIX_MATRIX_STDERR_LOG"] = stderrLog;
  try {
    return await fn();
  } finally {
    process.env["PATH"] = saved.PATH;
    if (saved.LOG === undefined) delete process.env["NIX_MATRIX_STDERR_LOG"];
    else process.env["NIX_MATRIX_STDERR_LOG"] = saved.LOG;
  }
}
