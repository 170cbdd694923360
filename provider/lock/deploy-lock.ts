// One deployer at a time per machine: a lock on the target held for a whole switch or
// install, naming its holder, so a second deployer (another stack, or a second `pulumi up`)
// waits a bounded time and then refuses with an error naming the first. On the target
// (deploy-lock.sh) it is a flock held by a shell on the lock's own SSH channel plus an owner
// record with a lease: when that channel drops (a cut copy, sshd restarted by an activation)
// the lease keeps the machine ours while the lock reconnects and takes it back with its
// token; if another deployer took it meanwhile, the next step fails naming it.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { PassThrough } from "node:stream";
import { DeployLockLostError, NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import { shellQuote, type SshSession } from "../ssh";
import { shippedFile } from "../util/shipped-file";
import { processRuns } from "../util/process-runs";
import { breakTokenLine, parseLockLine, scriptPrelude, TO_TARGET, type LeaseRecord, type LockMessage, type ScriptParams as ProtocolParams } from "./protocol";
import { nextLockStep, type LockEvent, type LockState, type LockStep } from "./transitions";

export interface DeployLockOptions {
  /** Who takes the lock, e.g. "stack dev/web, resource web1"; the deployer's host name, pid and the time are added. */
  holder: string;
  /** How long a second deployer waits for the first (and for a still running activation). */
  waitSeconds: number;
  /**
   * How long the lock outlives the deployer's last heartbeat (default 60 s): the time a
   * dropped lock connection has to come back, and how long a vanished deployer blocks others.
   */
  leaseSeconds?: number;
  /** Opens a new session when the lock's own drops; without it a dropped lock is lost. */
  reconnect?: () => Promise<SshSession>;
  /** A read-only command run on the target as soon as the lock is held (DeployLock.readUnderLock): one command round trip fewer. */
  readWhenLocked?: string;
  log?: Progress;
}

export interface DeployLock {
  /**
   * When taken, another deployer held the lock or an activation still ran: what was read of
   * the machine before the lock was taken may be out of date.
   */
  readonly waited: boolean;
  /** What options.readWhenLocked printed, run right after the lock was taken (undefined without a lock: no flock). */
  readonly readUnderLock?: string | undefined;
  /**
   * Before a step that changes the machine: confirms the lock is still ours (waiting for a
   * reconnect under way), or throws naming whoever took it. `step` names what was stopped.
   */
  ensureHeld(step: string): Promise<void>;
  /**
   * Before a kexec or reboot: stops renewing and closes the lock's connection without
   * releasing, so the lease holds the machine until the new boot's empty /run clears it.
   */
  keepUntilReboot(): Promise<void>;
  /** After a kexec: takes the lock again on the new boot (free, or still ours), or throws naming who took it. */
  retakeAfterBoot(open: () => Promise<SshSession>): Promise<void>;
  /** Releases the lock and closes its session; safe to call twice. */
  release(): Promise<void>;
}

export const DEFAULT_LEASE_SECONDS = 60;
const CONFIRM_TIMEOUT_MS = 10_000;
const RETRY_EVERY_MS = 1000;
const RELEASE_WAIT_MS = 15_000;

/** The holder line: who, from which machine and process, since when. */
export function describeHolder(who: string): string {
  return `${who} from ${os.hostname()} (pid ${process.pid}, started ${new Date().toISOString()})`;
}

/** This deployer machine, as a token names it (machine-id, else host name; hashed). */
function deployerId(): string {
  let id = os.hostname();
  try {
    id = readFileSync("/etc/machine-id", "utf8").trim() || id;
  } catch {
    // no machine-id: the host name stands in
  }
  return createHash("sha256").update(id).digest("hex").slice(0, 16);
}

function lockScript(): string {
  return readFileSync(shippedFile("lock/deploy-lock.sh"), "utf8");
}

/** The lock script running on one session, holding the lock. */
interface Hold {
  session: SshSession;
  lifeline: PassThrough;
  /** Settles when the script ends: released, or its connection gone. */
  finished: Promise<unknown>;
  /** Renews the lease now and resolves true once the target answered. */
  confirm(timeoutMs: number): Promise<boolean>;
}

type Started =
  | { kind: "held"; hold: Hold; waited: boolean; read: string }
  | { kind: "no-flock" }
  | { kind: "refused"; error: NixosPulumiError }
  | { kind: "lost"; holder: string; since: number }
  | { kind: "dropped"; reason: string };

/** Why the lock could not be taken on a new boot, for the error that stops the install. */
function notTakenAfterBoot(started: Exclude<Started, { kind: "held" } | { kind: "no-flock" }>): string {
  if (started.kind === "lost") {
    const when = started.since ? ` at ${new Date(started.since * 1000).toISOString()}` : "";
    return `${started.holder || "another deployer"} took the new boot${when}`;
  }
  return started.kind === "refused" ? started.error.message : started.reason;
}

interface ScriptParams extends ProtocolParams {
  log?: Progress | undefined;
}

/**
 * Runs the script. `breakToken`: the token to break, or how to find it from the lease record
 * the script prints first (its answer is the script's first stdin line).
 */
async function runScript(session: SshSession, p: ScriptParams, breakToken: string | ((record: LeaseRecord | undefined) => string) = p.breakToken): Promise<Started> {
  const command = `${scriptPrelude(p, shellQuote)}\n${lockScript()}`;
  const lifeline = new PassThrough();
  if (typeof breakToken === "string") lifeline.write(breakTokenLine(breakToken));
  let buffered = "";
  const messages: LockMessage[] = [];
  let onLocked: () => void = () => {};
  const locked = new Promise<void>((resolve) => (onLocked = resolve));
  let confirmations: Array<() => void> = [];
  const finished = session.exec(command, {
    stdin: lifeline,
    onStdout: (chunk) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const message = parseLockLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        messages.push(message);
        if (message.kind === "record") {
          if (typeof breakToken !== "string") lifeline.write(breakTokenLine(breakToken(message.record)));
        } else if (message.kind === "locked") onLocked();
        else if (message.kind === "held") {
          const waiting = confirmations;
          confirmations = [];
          waiting.forEach((done) => done());
        } else if (message.kind === "busy") p.log?.(`lock: ${session.target} is being deployed by ${message.holder || "another deployer"}; waiting up to ${p.waitSeconds}s`);
        else if (message.kind === "activation") p.log?.(`lock: an earlier activation still runs on ${session.target} (${describeActivation(message.found)}); waiting for it`);
      }
    },
  });
  // A lock session that drops later only ends this hold; it must not crash the deployer.
  const ended = finished.then(
    (r) => r,
    (err: unknown) => ({ code: null, stderr: err instanceof Error ? err.message : String(err) }),
  );
  const outcome = await Promise.race([locked.then(() => "locked" as const), ended]);
  if (outcome === "locked") {
    return {
      kind: "held",
      waited: messages.some((m) => m.kind === "busy" || m.kind === "activation"),
      read: messages.flatMap((m) => (m.kind === "read" ? [m.line] : [])).join("\n"),
      hold: {
        session,
        lifeline,
        finished: ended,
        confirm: (timeoutMs) =>
          new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), timeoutMs);
            timer.unref();
            const done = (ok: boolean) => {
              clearTimeout(timer);
              resolve(ok);
            };
            confirmations.push(() => done(true));
            void ended.then(() => done(false));
            lifeline.write(TO_TARGET.confirm);
          }),
      },
    };
  }
  lifeline.end();
  session.close();
  if (messages.some((m) => m.kind === "no-flock")) return { kind: "no-flock" };
  const lost = messages.find((m) => m.kind === "lost");
  if (lost) return lost;
  if (outcome.code === null) return { kind: "dropped", reason: outcome.stderr.trim() || "the connection closed" };
  return { kind: "refused", error: refusal(session.target, messages, outcome, p.waitSeconds) };
}

/**
 * Takes the target's deploy lock over `session` (a session of its own: it lives as long as
 * the lock). Resolves once held; rejects, naming the holder or the running activation, when
 * the wait runs out.
 */
export async function acquireDeployLock(session: SshSession, options: DeployLockOptions): Promise<DeployLock> {
  const params: ScriptParams = {
    mode: "take",
    token: `${deployerId()}.${process.pid}.${randomBytes(6).toString("hex")}`,
    holder: describeHolder(options.holder),
    waitSeconds: options.waitSeconds,
    leaseSeconds: options.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
    breakToken: "",
    ...(options.readWhenLocked ? { readWhenLocked: options.readWhenLocked } : {}),
    log: options.log,
  };
  // Taken again after a reconnect or a boot: nothing is read then.
  const again: ScriptParams = { ...params, mode: "resume", breakToken: "", readWhenLocked: undefined };
  let started: Started;
  try {
    started = await runScript(session, params, (record) => deadHolderToken(record, session.target, options.log));
  } catch (err) {
    session.close();
    throw err;
  }
  if (started.kind === "no-flock") {
    options.log?.(`lock: WARNING: ${session.target} has no \`flock\` command; deploying without a deploy lock`);
    return new UnlockedUntilBoot(again, options.log);
  }
  if (started.kind === "refused") throw started.error;
  if (started.kind !== "held") {
    throw new NixosPulumiError(`could not take the deploy lock: ${started.kind === "lost" ? `held by ${started.holder}` : started.reason}`, { step: "lock", host: session.target });
  }
  options.log?.(`lock: holding the deploy lock on ${session.target}`);
  return new HeldLock(started.hold, started.waited, again, options.reconnect, options.log, options.readWhenLocked ? started.read : undefined);
}

/**
 * The token of a lock left by a deployer process of THIS machine that no longer runs (a
 * killed `pulumi up`): its lease need not be waited out. Any other holder is waited for.
 */
function deadHolderToken(record: LeaseRecord | undefined, target: string, log: Progress | undefined): string {
  if (!record) return "";
  const [machine, pid] = record.token.split(".");
  if (machine !== deployerId() || !pid || record.leaseUntil === 0 || processRuns(Number(pid))) return "";
  log?.(`lock: the deploy lock on ${target} is held by ${record.holder}, a process of this machine that no longer runs; taking it over`);
  return record.token;
}

/** A lock taken on this boot: its states and their transitions are transitions.ts's; here, their effects. */
class HeldLock implements DeployLock {
  private state: LockState = { kind: "held" };
  /** Settles when the reconnect under way (state "reconnecting") has ended either way. */
  private reconnecting: Promise<void> = Promise.resolve();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private hold: Hold,
    readonly waited: boolean,
    private readonly params: ScriptParams,
    private reconnect: (() => Promise<SshSession>) | undefined,
    private readonly log: Progress | undefined,
    readonly readUnderLock?: string,
  ) {
    this.watch(hold);
    this.startHeartbeat();
  }

  /** Asks the transition function; on "go", the lock is in the new state before the caller's effect runs. */
  private step(event: LockEvent): LockStep {
    const step = nextLockStep(this.state, event);
    if (step.kind === "go") this.state = step.to;
    return step;
  }

  private startHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (this.step({ kind: "heartbeat" }).kind === "go") this.hold.lifeline.write(TO_TARGET.heartbeat);
    }, Math.min(10_000, (this.params.leaseSeconds * 1000) / 4));
    this.heartbeat.unref();
  }

  private get target(): string {
    return this.hold.session.target;
  }

  private watch(hold: Hold): void {
    // The end of a hold already replaced is no event of this lock.
    void hold.finished.then(() => this.hold === hold && this.dropped("its connection dropped"));
  }

  private dropped(why: string): void {
    if (this.step({ kind: "dropped" }).kind !== "go") return;
    this.hold.session.close();
    this.log?.(`lock: the deploy lock's connection to ${this.target} ended (${why}); reconnecting to keep it`);
    this.reconnecting = this.reacquire().then(
      (hold) => {
        const step = this.step({ kind: "reconnected" });
        if (step.kind !== "go" || step.effect !== "adopt") return void this.let(hold);
        this.hold = hold;
        this.watch(hold);
        this.log?.(`lock: reconnected; still holding the deploy lock on ${this.target}`);
      },
      (err: Error) => void this.step({ kind: "reconnect-failed", reason: err.message }),
    );
  }

  /** Reconnects and resumes the lock with our token until the lease is surely over. */
  private async reacquire(): Promise<Hold> {
    const giveUpAt = Date.now() + 2 * this.params.leaseSeconds * 1000;
    let last = "";
    while (this.step({ kind: "attempt" }).kind === "go") {
      if (!this.reconnect) throw new Error("its connection dropped and the lock cannot reconnect");
      if (Date.now() > giveUpAt) throw new Error(`the machine could not be reached to renew it within ${2 * this.params.leaseSeconds}s (${last})`);
      let started: Started;
      try {
        started = await runScript(await this.reconnect(), { ...this.params, waitSeconds: this.params.leaseSeconds });
      } catch (err) {
        started = { kind: "dropped", reason: err instanceof Error ? err.message.split("\n")[0]! : String(err) };
      }
      if (started.kind === "held") return started.hold;
      if (started.kind === "lost") {
        throw new Error(`${started.holder || "another deployer"} took this machine${started.since ? ` at ${new Date(started.since * 1000).toISOString()}` : ""} while the lock's connection was down`);
      }
      if (started.kind === "refused") throw new Error(started.error.message);
      if (started.kind === "no-flock") throw new Error("the machine no longer has `flock`");
      last = started.reason;
      await new Promise((r) => setTimeout(r, RETRY_EVERY_MS));
    }
    throw new Error("the lock is no longer wanted");
  }

  async ensureHeld(step: string): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      let next = this.step({ kind: "ensure" });
      while (next.kind === "wait") {
        await this.reconnecting;
        next = this.step({ kind: "ensure" });
      }
      if (next.kind === "ignore") return;
      if (next.kind === "refuse") {
        const { refusal } = next;
        if (refusal.kind === "lost") throw this.lostError(refusal.reason, step);
        throw new DeployLockLostError(`the deploy lock is no longer held (${refusal.state}) before ${step}`, { step: "lock", host: this.target });
      }
      if (await this.hold.confirm(CONFIRM_TIMEOUT_MS)) return;
      // No answer: a connection the target may already have given up; take the lock back on a new one.
      this.dropped("no answer to a heartbeat");
    }
    throw this.lostError(`its connection to ${this.target} keeps failing`, step);
  }

  private lostError(reason: string, step: string): DeployLockLostError {
    return new DeployLockLostError(`lost the deploy lock: ${reason}; stopped before ${step}`, {
      step: "lock",
      host: this.target,
      hint: "another deployment may have changed this machine; let it finish, then run `pulumi up` again (it converges from what the machine runs)",
    });
  }

  async keepUntilReboot(): Promise<void> {
    let next = this.step({ kind: "keep" });
    while (next.kind === "wait") {
      await this.reconnecting;
      next = this.step({ kind: "keep" });
    }
    if (next.kind !== "go") return;
    clearInterval(this.heartbeat);
    this.hold.lifeline.end();
    this.hold.session.close();
  }

  async retakeAfterBoot(open: () => Promise<SshSession>): Promise<void> {
    this.reconnect = open;
    if (this.step({ kind: "retake" }).kind !== "go") return;
    const session = await open();
    const started = await runScript(session, { ...this.params, waitSeconds: this.params.leaseSeconds });
    if (started.kind === "no-flock") {
      if (this.step({ kind: "retake-no-flock" }).kind === "go") this.log?.(`lock: WARNING: ${session.target} has no \`flock\` command after the boot; going on without a deploy lock`);
      return;
    }
    if (started.kind !== "held") {
      const reason = notTakenAfterBoot(started);
      if (this.step({ kind: "retake-refused", reason }).kind === "go") throw this.lostError(reason, "going on after the boot");
      return;
    }
    const step = this.step({ kind: "retaken" });
    if (step.kind !== "go" || step.effect !== "adopt-after-boot") return this.let(started.hold);
    this.hold = started.hold;
    this.watch(started.hold);
    this.startHeartbeat();
    this.log?.(`lock: holding the deploy lock on ${this.target} again after the boot`);
  }

  async release(): Promise<void> {
    const step = this.step({ kind: "release" });
    if (step.kind !== "go") return;
    clearInterval(this.heartbeat);
    if (step.effect === "release-hold") await this.let(this.hold);
    // A reconnect under way lets go of what it gets (see dropped); waited for a bounded time
    // only: a machine still unreachable keeps the lease until it runs out.
    else if (step.effect === "await-reconnect") await Promise.race([this.reconnecting, new Promise((r) => setTimeout(r, RELEASE_WAIT_MS).unref())]);
  }

  /** Releases one hold: "r" makes the target mark the record released, then the channel ends. */
  private async let(hold: Hold): Promise<void> {
    hold.lifeline.end(TO_TARGET.release);
    await Promise.race([hold.finished, new Promise((r) => setTimeout(r, 2000).unref())]);
    hold.session.close();
  }
}

/**
 * A machine without `flock` (a minimal rescue system) deploys unlocked; after a kexec into
 * the installer, which has it, the lock is taken there and held like any other.
 */
class UnlockedUntilBoot implements DeployLock {
  private lock: DeployLock | undefined;
  readonly waited = false;

  constructor(
    private readonly params: ScriptParams,
    private readonly log: Progress | undefined,
  ) {}

  async ensureHeld(step: string): Promise<void> {
    await this.lock?.ensureHeld(step);
  }

  async keepUntilReboot(): Promise<void> {
    await this.lock?.keepUntilReboot();
  }

  async retakeAfterBoot(open: () => Promise<SshSession>): Promise<void> {
    if (this.lock) return this.lock.retakeAfterBoot(open);
    const session = await open();
    const started = await runScript(session, { ...this.params, waitSeconds: this.params.leaseSeconds });
    if (started.kind === "no-flock") return;
    if (started.kind !== "held") {
      const reason = notTakenAfterBoot(started);
      throw new NixosPulumiError(`could not take the deploy lock after the boot: ${reason}`, {
        step: "lock",
        host: session.target,
        hint: "another deployment may be installing this machine; let it finish, then run `pulumi up` again",
      });
    }
    this.lock = new HeldLock(started.hold, started.waited, this.params, open, this.log);
    this.log?.(`lock: holding the deploy lock on ${session.target} again after the boot`);
  }

  async release(): Promise<void> {
    await this.lock?.release();
  }
}

/** "<pid> sh /run/nixos-pulumi/<id>/activate.sh <dir> <toplevel> <action> ..." → what it activates. */
function describeActivation(found: string): string {
  const [pid, , , , toplevel, action] = found.trim().split(/\s+/);
  return `pid ${pid}: ${action ?? "switch"} to ${toplevel ?? "?"}`;
}

function refusal(target: string, messages: LockMessage[], result: { code: number | null; stderr: string }, waitSeconds: number): NixosPulumiError {
  const refused = messages.find((m) => m.kind === "refused");
  const activation = messages.find((m) => m.kind === "refused-activation");
  if (refused) {
    return new NixosPulumiError(`another deployment holds this machine: ${refused.holder || "(holder unknown)"}; gave up after waiting ${waitSeconds}s`, {
      step: "lock",
      host: target,
      hint: "let that deployment finish (or stop it) and run `pulumi up` again; raise switch.timeoutSeconds to wait longer",
    });
  }
  if (activation) {
    return new NixosPulumiError(`an earlier activation is still running on the machine (${describeActivation(activation.found)}); gave up after waiting ${waitSeconds}s`, {
      step: "lock",
      host: target,
      hint: "a deployer was interrupted during activation; wait for it to finish or roll back, then run `pulumi up` again",
    });
  }
  return new NixosPulumiError(`could not take the deploy lock (exit ${result.code})`, { step: "lock", host: target, output: result.stderr });
}
