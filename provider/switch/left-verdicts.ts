// Verdicts an earlier deployer could not read: it gave up waiting for the machine after an
// activation (sshd down longer than its deadline), or it was killed while the detached
// activation ran. activate.sh wrote them in their run directories; the next switch reads
// them (under the deploy lock, so no activation still runs), reports them and removes them.
import { shellQuote, type SshSession } from "../ssh";
import { PRIVATE_ROOT } from "../ssh/private-paths";

export interface LeftVerdict {
  dir: string;
  /** The system that activation switched to ("" for a run directory of an older release). */
  toplevel: string;
  /** activate.sh's result: ok | reboot-required | failed | rolled-back | rollback-failed | profile-failed | not-activated. */
  result: string;
  reason: string;
  status: string;
  previous: string;
}

const FIELDS = ["toplevel", "result", "reason", "status", "previous"] as const;

/** The command that prints the finished run directories' verdicts (parseLeftVerdicts reads it); read-only. */
export function leftVerdictsCommand(): string {
  // One record per finished run: its directory, then one line per field (empty when missing).
  return [
    // switch.<id>, and <id> alone as older releases named them.
    `for done in ${PRIVATE_ROOT}/*/done; do`,
    `  [ -e "$done" ] || continue`,
    `  d="\${done%/done}"; echo "@@ $d"`,
    ...FIELDS.map((f) => `  echo "$(head -n1 "$d/${f}" 2>/dev/null)"`),
    `done`,
  ].join("\n");
}

/** What leftVerdictsCommand printed, oldest first. */
export function parseLeftVerdicts(stdout: string): LeftVerdict[] {
  const verdicts: LeftVerdict[] = [];
  for (const record of stdout.split("@@ ").slice(1)) {
    const [dir = "", ...values] = record.split("\n");
    const v = Object.fromEntries(FIELDS.map((f, i) => [f, (values[i] ?? "").trim()])) as Record<(typeof FIELDS)[number], string>;
    verdicts.push({ dir, ...v });
  }
  return verdicts.sort((a, b) => a.dir.localeCompare(b.dir, undefined, { numeric: true }));
}

/** Removes the run directories of verdicts read and reported (under the deploy lock: no activation runs). */
export async function removeLeftVerdicts(session: SshSession, verdicts: LeftVerdict[]): Promise<void> {
  const dirs = verdicts.map((v) => v.dir).filter((d) => d.startsWith(`${PRIVATE_ROOT}/`) && !d.includes("/../"));
  if (dirs.length === 0) return;
  await session.execOk(`rm -rf ${dirs.map(shellQuote).join(" ")}`, "activate");
}

/** One progress line for a verdict read late. */
export function describeLeftVerdict(v: LeftVerdict): string {
  const what = v.toplevel ? `the activation of ${v.toplevel}` : "an activation";
  const outcome: Record<string, string> = {
    ok: "succeeded",
    "reboot-required": "succeeded; the new system takes effect after a reboot",
    failed: `failed (${v.reason || "switch"}, exit ${v.status}) and was not rolled back`,
    "rolled-back": `failed (${v.reason || "switch"}, exit ${v.status}) and was rolled back to ${v.previous}`,
    "rollback-failed": `failed (${v.reason || "switch"}, exit ${v.status}) and its rollback to ${v.previous} failed too`,
    "profile-failed": "failed to set the system profile; nothing was activated",
    "not-activated": "activated nothing: the new system has another init, which action \"test\" cannot activate without a reboot",
  };
  return `activate: ${what} started by an earlier run (${v.dir}) ${outcome[v.result] ?? `ended with "${v.result}"`}; its verdict was left unread until now`;
}
