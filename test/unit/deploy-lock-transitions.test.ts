// The deploy lock's transitions (provider/lock/transitions.ts), without SSH: every state ×
// event, the ones refused or ignored included. The integration tier (deploy-lock.test.ts)
// runs the same lock against real sshd and cut connections.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { nextLockStep, type LockEvent, type LockState, type LockStep } from "../../provider/lock/transitions";

const STATES: Record<LockState["kind"], LockState> = {
  held: { kind: "held" },
  reconnecting: { kind: "reconnecting" },
  lost: { kind: "lost", reason: "stack b/two took this machine" },
  kept: { kind: "kept" },
  unlocked: { kind: "unlocked" },
  released: { kind: "released" },
};

const EVENTS: Record<LockEvent["kind"], LockEvent> = {
  heartbeat: { kind: "heartbeat" },
  dropped: { kind: "dropped" },
  attempt: { kind: "attempt" },
  reconnected: { kind: "reconnected" },
  "reconnect-failed": { kind: "reconnect-failed", reason: "unreachable for 120s" },
  ensure: { kind: "ensure" },
  keep: { kind: "keep" },
  retake: { kind: "retake" },
  retaken: { kind: "retaken" },
  "retake-no-flock": { kind: "retake-no-flock" },
  "retake-refused": { kind: "retake-refused", reason: "stack b/two took the new boot" },
  release: { kind: "release" },
};

/** A step written short: "ignore", "wait", "refuse <what>", "<state> <effect>". */
function show(step: LockStep): string {
  switch (step.kind) {
    case "ignore":
    case "wait":
      return step.kind;
    case "refuse":
      return step.refusal.kind === "lost" ? `refuse lost: ${step.refusal.reason}` : `refuse not-held (${step.refusal.state})`;
    case "go":
      return `${step.to.kind}${step.to.kind === "lost" ? ` (${step.to.reason})` : ""} ${step.effect}`;
  }
}

// Rows: events; columns: held, reconnecting, lost, kept, unlocked, released.
const EXPECTED: Record<LockEvent["kind"], Record<LockState["kind"], string>> = {
  heartbeat: { held: "held heartbeat", reconnecting: "ignore", lost: "ignore", kept: "ignore", unlocked: "ignore", released: "ignore" },
  dropped: { held: "reconnecting reconnect", reconnecting: "ignore", lost: "ignore", kept: "ignore", unlocked: "ignore", released: "ignore" },
  // Released while reconnecting: the reconnect goes on, to let go of what it gets back.
  attempt: { held: "ignore", reconnecting: "reconnecting attempt", lost: "ignore", kept: "ignore", unlocked: "ignore", released: "released attempt" },
  // A reconnect finishing after the release (or in any state that does not want it) lets the lock go.
  reconnected: { held: "held let-go", reconnecting: "held adopt", lost: "lost (stack b/two took this machine) let-go", kept: "kept let-go", unlocked: "unlocked let-go", released: "released let-go" },
  "reconnect-failed": { held: "ignore", reconnecting: "lost (unreachable for 120s) none", lost: "ignore", kept: "ignore", unlocked: "ignore", released: "ignore" },
  ensure: {
    held: "held confirm",
    reconnecting: "wait",
    lost: "refuse lost: stack b/two took this machine",
    kept: "refuse not-held (kept)",
    unlocked: "ignore",
    released: "refuse not-held (released)",
  },
  keep: { held: "kept close-for-reboot", reconnecting: "wait", lost: "ignore", kept: "ignore", unlocked: "ignore", released: "ignore" },
  retake: { held: "ignore", reconnecting: "ignore", lost: "ignore", kept: "kept take-on-new-boot", unlocked: "ignore", released: "ignore" },
  // Released while the new boot's lock was being taken: let it go at once.
  retaken: { held: "held let-go", reconnecting: "reconnecting let-go", lost: "lost (stack b/two took this machine) let-go", kept: "held adopt-after-boot", unlocked: "unlocked let-go", released: "released let-go" },
  "retake-no-flock": { held: "ignore", reconnecting: "ignore", lost: "ignore", kept: "unlocked warn-no-flock", unlocked: "ignore", released: "ignore" },
  "retake-refused": { held: "ignore", reconnecting: "ignore", lost: "ignore", kept: "lost (stack b/two took the new boot) fail-lost", unlocked: "ignore", released: "ignore" },
  // Release while reconnecting: released at once, the reconnect waited for (bounded).
  release: { held: "released release-hold", reconnecting: "released await-reconnect", lost: "released stop", kept: "released stop", unlocked: "released stop", released: "ignore" },
};

test("every state × event gives the declared step", () => {
  const wrong: string[] = [];
  for (const [e, event] of Object.entries(EVENTS)) {
    for (const [s, state] of Object.entries(STATES)) {
      const got = show(nextLockStep(state, event));
      const want = EXPECTED[e as LockEvent["kind"]][s as LockState["kind"]];
      if (got !== want) wrong.push(`${s} × ${e}: ${got}, expected ${want}`);
    }
  }
  assert.deepEqual(wrong, []);
});

/** The steps of `events` one after the other from a held lock, written short. */
function walk(events: LockEvent["kind"][]): string[] {
  let state: LockState = STATES.held;
  return events.map((event) => {
    const step = nextLockStep(state, EVENTS[event]);
    if (step.kind === "go") state = step.to;
    return `${event}: ${show(step)}`;
  });
}

test("the transitions of a whole deploy: take, a drop and its reconnect, a kexec, the new boot, release", () => {
  assert.deepEqual(walk(["heartbeat", "dropped", "ensure", "reconnected", "ensure", "keep", "dropped", "ensure", "retake", "retaken", "ensure", "release", "release"]), [
    "heartbeat: held heartbeat",
    "dropped: reconnecting reconnect",
    "ensure: wait",
    "reconnected: held adopt",
    "ensure: held confirm",
    "keep: kept close-for-reboot",
    // The connection closed for the kexec is no drop to recover from.
    "dropped: ignore",
    "ensure: refuse not-held (kept)",
    "retake: kept take-on-new-boot",
    "retaken: held adopt-after-boot",
    "ensure: held confirm",
    "release: released release-hold",
    "release: ignore",
  ]);
});

test("a reconnect that keeps failing while the deploy ends: released, it still lets go of what it gets back", () => {
  assert.deepEqual(walk(["dropped", "attempt", "release", "attempt", "reconnected", "ensure"]), [
    "dropped: reconnecting reconnect",
    "attempt: reconnecting attempt",
    "release: released await-reconnect",
    "attempt: released attempt",
    "reconnected: released let-go",
    "ensure: refuse not-held (released)",
  ]);
});
