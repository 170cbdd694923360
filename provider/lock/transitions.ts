// The deploy lock's states and every transition between them, in one pure function: the
// lock (deploy-lock.ts HeldLock) tells it what happened and performs the effect it answers.
// test/unit/deploy-lock-transitions.test.ts walks every state × event.

export type LockState =
  /** Ours, on a live connection that heartbeats renew. */
  | { kind: "held" }
  /** The connection dropped; the lease keeps the machine ours while a new one takes it back. */
  | { kind: "reconnecting" }
  /** Taken back failed (another deployer took it, or the machine stayed out of reach). */
  | { kind: "lost"; reason: string }
  /** Left to its lease over a kexec or reboot, whose empty /run ends it. */
  | { kind: "kept" }
  /** The new boot has no `flock`: deploying without a lock. */
  | { kind: "unlocked" }
  /** Let go; nothing further is taken. */
  | { kind: "released" };

export type LockEvent =
  /** The heartbeat timer ticked. */
  | { kind: "heartbeat" }
  /** The lock's connection ended, or a confirm went unanswered. */
  | { kind: "dropped" }
  /** A reconnect is about to try (again). */
  | { kind: "attempt" }
  /** A reconnect took the lock back on a new connection. */
  | { kind: "reconnected" }
  /** A reconnect gave up: `reason` says why. */
  | { kind: "reconnect-failed"; reason: string }
  /** Before a step that changes the machine. */
  | { kind: "ensure" }
  /** Before a kexec or reboot. */
  | { kind: "keep" }
  /** After a kexec or reboot: take the lock on the new boot? */
  | { kind: "retake" }
  /** The new boot's lock is ours. */
  | { kind: "retaken" }
  /** The new boot has no `flock`. */
  | { kind: "retake-no-flock" }
  /** Another deployer holds the new boot, or taking it failed: `reason` says why. */
  | { kind: "retake-refused"; reason: string }
  | { kind: "release" };

/** What the lock does on a transition. */
export type LockEffect =
  /** Renew the lease. */
  | "heartbeat"
  /** Close the dropped connection and start taking the lock back on a new one. */
  | "reconnect"
  /** Try once more to take the lock back. */
  | "attempt"
  /** Hold on the new connection (watch it, log). */
  | "adopt"
  /** Hold on the new boot's connection (watch it, heartbeat again, log). */
  | "adopt-after-boot"
  /** Release a lock just taken that nobody wants any more (released meanwhile). */
  | "let-go"
  /** Ask the target to confirm the lock is still ours. */
  | "confirm"
  /** Stop renewing and close the connection without releasing. */
  | "close-for-reboot"
  /** Take the lock on the new boot. */
  | "take-on-new-boot"
  /** Warn that the new boot is deployed without a lock. */
  | "warn-no-flock"
  /** Stop the step: the lock was lost after the boot. */
  | "fail-lost"
  /** Stop the heartbeat and release the held lock. */
  | "release-hold"
  /** Stop the heartbeat; wait (bounded) for the reconnect, which lets go of what it takes. */
  | "await-reconnect"
  /** Stop the heartbeat; nothing is held. */
  | "stop"
  | "none";

export type LockRefusal = { kind: "lost"; reason: string } | { kind: "not-held"; state: "kept" | "released" };

export type LockStep =
  /** The event changes nothing in this state. */
  | { kind: "ignore" }
  /** A reconnect is under way: wait for it, then ask again. */
  | { kind: "wait" }
  /** The event cannot be honoured in this state: the caller throws. */
  | { kind: "refuse"; refusal: LockRefusal }
  | { kind: "go"; to: LockState; effect: LockEffect };

const go = (to: LockState, effect: LockEffect): LockStep => ({ kind: "go", to, effect });
const IGNORE: LockStep = { kind: "ignore" };
const WAIT: LockStep = { kind: "wait" };

export function nextLockStep(state: LockState, event: LockEvent): LockStep {
  switch (event.kind) {
    case "heartbeat":
      return state.kind === "held" ? go(state, "heartbeat") : IGNORE;
    case "dropped":
      // Kept: closed on purpose. Reconnecting, lost, released: already handled.
      return state.kind === "held" ? go({ kind: "reconnecting" }, "reconnect") : IGNORE;
    case "attempt":
      // Released meanwhile it goes on, so that the lock it gets back is let go at once instead
      // of its lease being left to run out.
      return state.kind === "reconnecting" || state.kind === "released" ? go(state, "attempt") : IGNORE;
    case "reconnected":
      // A lock taken back is never left held: unless still wanted, it is let go.
      return state.kind === "reconnecting" ? go({ kind: "held" }, "adopt") : go(state, "let-go");
    case "reconnect-failed":
      return state.kind === "reconnecting" ? go({ kind: "lost", reason: event.reason }, "none") : IGNORE;
    case "ensure":
      return onEnsure(state);
    case "keep":
      if (state.kind === "reconnecting") return WAIT;
      return state.kind === "held" ? go({ kind: "kept" }, "close-for-reboot") : IGNORE;
    case "retake":
      return state.kind === "kept" ? go(state, "take-on-new-boot") : IGNORE;
    case "retaken":
      return state.kind === "kept" ? go({ kind: "held" }, "adopt-after-boot") : go(state, "let-go");
    case "retake-no-flock":
      return state.kind === "kept" ? go({ kind: "unlocked" }, "warn-no-flock") : IGNORE;
    case "retake-refused":
      return state.kind === "kept" ? go({ kind: "lost", reason: event.reason }, "fail-lost") : IGNORE;
    case "release":
      return onRelease(state);
  }
}

function onEnsure(state: LockState): LockStep {
  switch (state.kind) {
    case "held":
      return go(state, "confirm");
    case "reconnecting":
      return WAIT;
    case "unlocked":
      return IGNORE;
    case "lost":
      return { kind: "refuse", refusal: { kind: "lost", reason: state.reason } };
    case "kept":
    case "released":
      return { kind: "refuse", refusal: { kind: "not-held", state: state.kind } };
  }
}

function onRelease(state: LockState): LockStep {
  switch (state.kind) {
    case "released":
      return IGNORE;
    case "held":
      return go({ kind: "released" }, "release-hold");
    case "reconnecting":
      return go({ kind: "released" }, "await-reconnect");
    case "kept":
    case "lost":
    case "unlocked":
      return go({ kind: "released" }, "stop");
  }
}
