// One deployer at a time per machine: a lock on the target held for a whole switch or
// install, naming its holder, so a second deployer (another stack, or a second `pulumi up`)
// waits a bounded time and then refuses with an error naming the first. The lock is a
// flock held by a shell on the target (deploy-lock.sh) whose lifeline is its own SSH
// channel: a killed deployer's lock ends with its connection, never goes stale.
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import { shellQuote, type SshSession } from "../ssh";

export interface DeployLockOptions {
  /** Who takes the lock, e.g. "stack dev/web, resource web1"; the deployer's host name, pid and the time are added. */
  holder: string;
  /** How long a second deployer waits for the first (and for a still running activation). */
  waitSeconds: number;
  /** The target releases the lock when no heartbeat came for this long (default 60 s). */
  heartbeatSeconds?: number;
  log?: Progress;
}

export interface DeployLock {
  /** Releases the lock and closes its session; safe to call twice. */
  release(): Promise<void>;
}

const HEARTBEAT_EVERY_MS = 10_000;

/** The holder line: who, from which machine and process, since when. */
export function describeHolder(who: string): string {
  return `${who} from ${os.hostname()} (pid ${process.pid}, started ${new Date().toISOString()})`;
}

function lockScript(): string {
  return readFileSync(path.resolve(__dirname, "../../../provider/switch/deploy-lock.sh"), "utf8");
}

/**
 * Takes the target's deploy lock over `session` (a session of its own: it lives as long as
 * the lock). Resolves once held; rejects, naming the holder or the running activation, when
 * the wait runs out.
 */
export async function acquireDeployLock(session: SshSession, options: DeployLockOptions): Promise<DeployLock> {
  const heartbeatSeconds = options.heartbeatSeconds ?? 60;
  const command = [
    `WAIT_SECONDS=${Math.max(0, Math.floor(options.waitSeconds))}`,
    `HEARTBEAT_SECONDS=${heartbeatSeconds}`,
    `HOLDER=${shellQuote(describeHolder(options.holder).replace(/\n/g, " "))}`,
    lockScript(),
  ].join("\n");
  const lifeline = new PassThrough();
  let buffered = "";
  const lines: string[] = [];
  let onLocked: () => void = () => {};
  const locked = new Promise<void>((resolve) => (onLocked = resolve));
  const finished = session.exec(command, {
    stdin: lifeline,
    onStdout: (chunk) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        if (line === "locked") onLocked();
        else if (line.startsWith("busy ")) options.log?.(`lock: ${session.target} is being deployed by ${line.slice(5) || "another deployer"}; waiting up to ${options.waitSeconds}s`);
        else if (line.startsWith("activation ")) options.log?.(`lock: an earlier activation still runs on ${session.target} (${describeActivation(line.slice(11))}); waiting for it`);
      }
    },
  });
  // A lock session that drops later only ends the lock; it must not crash the deployer.
  finished.catch(() => undefined);
  let outcome: "locked" | { code: number | null; stderr: string };
  try {
    outcome = await Promise.race([locked.then(() => "locked" as const), finished]);
  } catch (err) {
    session.close();
    throw err;
  }
  if (outcome !== "locked") {
    lifeline.end();
    session.close();
    if (lines.includes("no-flock")) {
      options.log?.(`lock: WARNING: ${session.target} has no \`flock\` command; deploying without a deploy lock`);
      return { release: async () => undefined };
    }
    throw refusal(session.target, lines, outcome, options.waitSeconds);
  }
  options.log?.(`lock: holding the deploy lock on ${session.target}`);
  const heartbeat = setInterval(() => lifeline.write("."), HEARTBEAT_EVERY_MS);
  heartbeat.unref();
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      lifeline.end();
      // The target drops the lock as soon as stdin closes; wait briefly for that, then close.
      await Promise.race([finished.catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
      session.close();
    },
  };
}

/** "<pid> sh /run/nixos-pulumi/<id>/activate.sh <dir> <toplevel> <action> ..." → what it activates. */
function describeActivation(found: string): string {
  const [pid, , , , toplevel, action] = found.trim().split(/\s+/);
  return `pid ${pid}: ${action ?? "switch"} to ${toplevel ?? "?"}`;
}

function refusal(target: string, lines: string[], result: { code: number | null; stderr: string }, waitSeconds: number): NixosPulumiError {
  const refused = lines.find((l) => l.startsWith("refused "));
  const activation = lines.find((l) => l.startsWith("refused-activation "));
  if (refused !== undefined) {
    return new NixosPulumiError(`another deployment holds this machine: ${refused.slice(8) || "(holder unknown)"}; gave up after waiting ${waitSeconds}s`, {
      step: "lock",
      host: target,
      hint: "let that deployment finish (or stop it) and run `pulumi up` again; raise switch.timeoutSeconds to wait longer",
    });
  }
  if (activation !== undefined) {
    return new NixosPulumiError(`an earlier activation is still running on the machine (${describeActivation(activation.slice(19))}); gave up after waiting ${waitSeconds}s`, {
      step: "lock",
      host: target,
      hint: "a deployer was interrupted during activation; wait for it to finish or roll back, then run `pulumi up` again",
    });
  }
  return new NixosPulumiError(`could not take the deploy lock (exit ${result.code})`, { step: "lock", host: target, output: result.stderr });
}
