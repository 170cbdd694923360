// The deploy lock's line protocol between the deployer (deploy-lock.ts) and the script it
// runs on the target (deploy-lock.sh), declared once: the parameters and exit codes are
// prepended to the script as shell variables from here, the target's lines are parsed into
// LockMessage here, and test/unit/deploy-lock-protocol.test.ts holds the script to both.

/** Bytes the deployer writes to the script's stdin while it holds the lock. */
export const TO_TARGET = {
  /** Renews the lease. */
  heartbeat: ".",
  /** Renews the lease and asks for a "held" line back. */
  confirm: "c",
  /** Marks the record released (lease 0) and ends the script. */
  release: "r",
} as const;

/** The script's exit codes when it ends without holding the lock. */
export const EXIT = {
  /** No usable `flock` on the machine ("no-flock"). */
  noFlock: 69,
  /** /run/nixos-pulumi is not a root-owned directory. */
  badRunDir: 70,
  /** The wait ran out ("refused …" / "refused-activation …"). */
  refused: 75,
  /** A resuming deployer finds another deployer's record ("lost …"). */
  lost: 76,
} as const;

/** What the script says, one line each. */
export type LockMessage =
  | { kind: "locked" }
  | { kind: "held" }
  | { kind: "waiting" }
  | { kind: "no-flock" }
  /** It has to wait; `holder` is empty until a live record names one. */
  | { kind: "busy"; holder: string }
  /** An activation started earlier still runs: "<pid> <cmdline>". */
  | { kind: "activation"; found: string }
  | { kind: "refused"; holder: string }
  | { kind: "refused-activation"; found: string }
  /** Another deployer holds the machine a resuming deployer had; `since` in epoch seconds (0: unknown). */
  | { kind: "lost"; since: number; holder: string }
  /** The lease record as the script found it (empty: none), answered with the BREAK line. */
  | { kind: "record"; record: LeaseRecord | undefined }
  /** A line the script's read under the lock printed (ScriptParams.readWhenLocked), before "locked". */
  | { kind: "read"; line: string }
  | { kind: "unknown"; line: string };

/** How the script prefixes each line of its read under the lock. */
export const READ_PREFIX = "| ";

const WITH_TEXT = ["busy", "activation", "refused", "refused-activation"] as const;

export function parseLockLine(line: string): LockMessage {
  if (line.startsWith(READ_PREFIX)) return { kind: "read", line: line.slice(READ_PREFIX.length) };
  if (line === "locked" || line === "held" || line === "waiting" || line === "no-flock") return { kind: line };
  const space = line.indexOf(" ");
  const word = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? "" : line.slice(space + 1);
  if (word === "record") return { kind: "record", record: parseLeaseRecord(rest) };
  if (word === "lost") {
    const [since = "0", ...holder] = rest.split(" ");
    return { kind: "lost", since: Number(since) || 0, holder: holder.join(" ") };
  }
  if (word === "busy" || word === "refused") return { kind: word, holder: rest };
  if (word === "activation" || word === "refused-activation") return { kind: word, found: rest };
  return { kind: "unknown", line };
}

/** The message words the script may print, for the protocol test. */
export const MESSAGE_WORDS = ["locked", "held", "waiting", "no-flock", "lost", "record", ...WITH_TEXT];

/** The target's lease record, deploy.lock.owner: "<token> <lease-until> <since> <pid> <holder>". */
export interface LeaseRecord {
  /** "<deployer machine id hash>.<pid>.<random>". */
  token: string;
  /** Epoch seconds; 0 when released. */
  leaseUntil: number;
  since: number;
  /** The target's lock shell. */
  pid: string;
  holder: string;
}

/** The lock's directory on the target: /run, so a reboot or kexec ends every lock. */
export const LOCK_DIR = "/run/nixos-pulumi";

export function parseLeaseRecord(text: string): LeaseRecord | undefined {
  const [token = "", until = "0", since = "0", pid = "", ...holder] = text.trim().split(" ");
  if (!token) return undefined;
  return { token, leaseUntil: Number(until) || 0, since: Number(since) || 0, pid, holder: holder.join(" ") };
}

/** The parameters the script reads, as shell assignments prepended to it. */
export interface ScriptParams {
  mode: "take" | "resume";
  token: string;
  holder: string;
  waitSeconds: number;
  leaseSeconds: number;
  /** The token of a deployer known dead, or "": not in the prelude, the first line of stdin (breakTokenLine). */
  breakToken: string;
  /**
   * A read-only command the script runs as soon as it holds the lock, before "locked": its
   * output comes back as "read" lines, what the deployer would otherwise read next in a
   * command of its own, already under the lock.
   */
  readWhenLocked?: string;
}

/**
 * The first line the deployer writes to the script's stdin, its answer to the script's
 * "record": the token of a deployer known dead (its lock is taken over), or an empty line.
 */
export function breakTokenLine(token: string): string {
  return `${token.replace(/\n/g, "")}\n`;
}

export function scriptPrelude(p: ScriptParams, quote: (s: string) => string, lockDir = LOCK_DIR): string {
  return [
    `LOCK_DIR=${quote(lockDir)}`,
    `MODE=${p.mode}`,
    `TOKEN=${quote(p.token)}`,
    `WAIT_SECONDS=${Math.max(0, Math.floor(p.waitSeconds))}`,
    `LEASE_SECONDS=${Math.max(1, Math.floor(p.leaseSeconds))}`,
    `HOLDER=${quote(p.holder.replace(/\n/g, " "))}`,
    ...Object.entries(EXIT).map(([name, code]) => `EXIT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}=${code}`),
    ...(p.readWhenLocked ? ["READ_WHEN_LOCKED=1", `read_when_locked() {\n${p.readWhenLocked}\n}`] : ["READ_WHEN_LOCKED="]),
  ].join("\n");
}
