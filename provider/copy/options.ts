// What a closure copy takes and gives back, shared by the copy in this process
// (copy-paths.ts), the one in a child process (in-child.ts, child.ts) and their callers.
import type { SshSession } from "../ssh";
import type { Progress } from "../progress";
import type { CompressSetting, Compression } from "./compression";

export interface CopyOptions {
  /** Copy into the store under this root (e.g. "/mnt" during an install). */
  storeRoot?: string;
  progress?: Progress;
  /** "auto" (default): compress only when the link measures slow. */
  compress?: CompressSetting;
  /** Opens a new session after the connection dropped; without it a cut copy fails. */
  reconnect?: () => Promise<SshSession>;
  /** Paths at least this large go through a staging file and resume mid-path (default 64 MiB). */
  stageAbove?: number;
  /**
   * Keep a large copy in this process. By default a copy of at least CHILD_BYTES runs in a
   * child node process with its own connection (in-child.ts), which bounds its memory.
   */
  inProcess?: boolean;
  /**
   * Nothing is sent before this settles; the question of what the target lacks (which changes
   * nothing) is asked meanwhile, so it overlaps the caller's own checks. false: the copy ends
   * sending nothing (`withheld`); a rejection ends it with that error.
   */
  sendAfter?: Promise<boolean>;
}

export interface CopyResult {
  pathsTotal: number;
  pathsCopied: number;
  /** NAR bytes of the paths the target lacked. */
  bytesCopied: number;
  /** Bytes put on the SSH channels, after compression, including resent ones. */
  wireBytes: number;
  compression: Compression;
  /** Times the copy reconnected and resumed. */
  resumes: number;
  /** For each staged path resumed mid-path: the bytes the target already had. */
  resumedWithinPath: number[];
  seconds: number;
  /** Peak resident memory of the copy's child process (KiB), when the copy ran in one. */
  childMaxRssKiB?: number;
  /** The cipher of the copy's own connection, when it ran in a child process. */
  childCipher?: string;
  /** Nothing was sent: `sendAfter` said false. */
  withheld?: boolean;
  /** The session to go on with: a new one when the copy reconnected. */
  session: SshSession;
}

/** A copy's result without its session: what a child process reports over IPC. */
export type CopyReport = Omit<CopyResult, "session">;

export interface TargetFacts {
  missing: Set<string>;
  tools: Set<string>;
}
