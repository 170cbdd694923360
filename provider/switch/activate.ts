// Deployer side of a switch: upload the activation script, start it detached on the target,
// and wait for its verdict, read back from files, over a new connection if the old one
// dropped. The verdict is never inferred from a dropped connection.
import { randomBytes } from "node:crypto";
import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import { shellJoin, shellQuote, tail, type SshSession } from "../ssh";
import { activationScript } from "./activation-script";

export interface ActivateOptions {
  toplevel: string;
  action: "switch" | "boot" | "test";
  rollback: "on-failure" | "none";
  timeoutSeconds: number;
  healthChecks?: string[];
  log?: Progress;
  /** Opens a fresh session (new TCP connection and handshake) when the current one dropped. */
  reconnect: () => Promise<SshSession>;
}

export interface ActivationResult {
  generation: number;
  previousToplevel: string;
  output: string;
}

const RUN_ROOT = "/run/nixos-pulumi";

/** Starts the script detached: a transient systemd unit (no --pipe) or setsid without systemd. */
function detachedStart(script: string, args: string[], unit: string): string {
  const command = shellJoin(["sh", script, ...args]);
  return [
    `if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemd-run >/dev/null; then`,
    `  systemd-run --quiet --collect --unit ${shellQuote(unit)} --service-type=exec ${command}`,
    `else`,
    `  setsid ${command} </dev/null >/dev/null 2>&1 &`,
    `fi`,
  ].join("\n");
}

export async function activate(first: SshSession, options: ActivateOptions): Promise<ActivationResult> {
  const id = `${Date.now()}-${randomBytes(4).toString("hex")}`;
  const dir = `${RUN_ROOT}/${id}`;
  const script = `${dir}/activate.sh`;
  const log = options.log ?? (() => {});
  await first.upload(script, activationScript(), "0700");
  await first.upload(`${dir}/health-checks`, (options.healthChecks ?? []).join("\n") + "\n", "0600");
  log(`activate: ${options.action} ${options.toplevel} (rollback: ${options.rollback})`);
  await first.execOk(detachedStart(script, [dir, options.toplevel, options.action, options.rollback], `nixos-pulumi-switch-${id}`), "activate");

  let session = first;
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  for (;;) {
    if (Date.now() > deadline) {
      throw new NixosPulumiError(`activation did not finish within ${options.timeoutSeconds}s`, {
        step: "activate",
        host: first.target,
        hint: `look at ${dir}/output on the machine; raise switch.timeoutSeconds for slow activations`,
      });
    }
    try {
      if (!session.isOpen) {
        log("activate: connection dropped; reconnecting to read the verdict");
        session = await options.reconnect();
      }
      const done = await session.exec(`test -e ${dir}/done && cat ${dir}/result ${dir}/status ${dir}/previous ${dir}/generation`);
      if (done.code === 0) return await verdict(session, dir, options, done.stdout.split("\n"));
    } catch (err) {
      if (err instanceof NixosPulumiError && err.details.step !== "exec") throw err;
      log("activate: connection dropped; reconnecting to read the verdict");
      session = await options.reconnect();
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function verdict(session: SshSession, dir: string, options: ActivateOptions, lines: string[]): Promise<ActivationResult> {
  const [result = "", status = "", previous = "", generation = ""] = lines.map((l) => l.trim());
  const output = tail((await session.exec(`cat ${dir}/output`)).stdout, 60);
  await session.exec(`rm -rf ${dir}`);
  if (result === "ok") {
    options.log?.(`activate: ${options.action} ok, generation ${generation}`);
    return { generation: Number(generation || 0), previousToplevel: previous, output };
  }
  const meaning =
    status === "4" ? "some units failed (exit 4)" : status === "100" ? "a health check failed" : `switch-to-configuration exited ${status}`;
  const outcome: Record<string, string> = {
    "rolled-back": `the host was rolled back to ${previous}`,
    failed: "the host was NOT rolled back (rollback: none, or no previous generation)",
    "rollback-failed": `the rollback to ${previous} failed too: the host needs attention`,
    "profile-failed": "setting the system profile failed; nothing was activated",
  };
  throw new NixosPulumiError(`activation of ${options.toplevel} failed: ${meaning}; ${outcome[result] ?? result}`, {
    step: "activate",
    host: session.target,
    output,
    hint: "fix the configuration and run `pulumi up` again; the state still records the previous system",
  });
}
