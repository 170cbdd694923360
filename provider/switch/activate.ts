// Deployer side of a switch: upload the activation script, start it detached on the target,
// and wait for its verdict, read back from files, over a new connection if the old one
// dropped. The verdict is never inferred from a dropped connection.
import { randomBytes } from "node:crypto";
import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import { shellJoin, shellQuote, tail, type SshSession } from "../ssh";
import { makeRunDirCommand, PRIVATE_ROOT, REFUSED_EXIT } from "../ssh/private-paths";
import { activationScript } from "./activation-script";

export interface ActivateOptions {
  toplevel: string;
  action: "switch" | "boot" | "test";
  rollback: "magic" | "on-failure" | "none";
  /** magic: how long the new system waits for the deployer's confirmation. */
  confirmTimeoutSeconds?: number;
  timeoutSeconds: number;
  healthChecks?: string[];
  log?: Progress;
  /** Opens a fresh session (new TCP connection and handshake) when the current one dropped. */
  reconnect: () => Promise<SshSession>;
}

export interface ActivationResult {
  generation: number;
  /** switch-to-configuration exited 100: the new system takes effect at the next boot. */
  rebootRequired: boolean;
  previousToplevel: string;
  output: string;
  /** The open session the verdict was read over (a new one if the first dropped). */
  session: SshSession;
}

const RUN_ROOT = PRIVATE_ROOT;

/**
 * Starts the script detached: a transient systemd unit (no --pipe, nixpkgs #462179) or
 * setsid without systemd. As nixos-rebuild-ng does, the unit gets LOCALE_ARCHIVE and the
 * script runs by absolute path: a NixOS unit's PATH holds only systemd's bin directory.
 */
function detachedStart(script: string, args: string[], unit: string): string {
  const command = shellJoin(["/bin/sh", script, ...args]);
  return [
    `if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemd-run >/dev/null; then`,
    `  systemd-run --quiet --collect --no-ask-password --unit ${shellQuote(unit)} --service-type=exec \\`,
    `    -E "LOCALE_ARCHIVE=\${LOCALE_ARCHIVE:-/run/current-system/sw/lib/locale/locale-archive}" ${command}`,
    `else`,
    `  setsid ${command} </dev/null >/dev/null 2>&1 &`,
    `fi`,
  ].join("\n");
}

export async function activate(first: SshSession, options: ActivateOptions): Promise<ActivationResult> {
  const id = `${Date.now()}-${randomBytes(4).toString("hex")}`;
  const dir = `${RUN_ROOT}/switch.${id}`;
  const log = options.log ?? (() => {});
  log(`activate: ${options.action} ${options.toplevel} (rollback: ${options.rollback})`);
  // One command writes the script, starts it detached and waits for its verdict; if the
  // connection drops meanwhile, a new connection runs only the wait again.
  const start = [
    `${makeRunDirCommand(dir, "switch")} || exit ${REFUSED_EXIT}`,
    heredoc(`${dir}/activate.sh`, activationScript()),
    heredoc(`${dir}/health-checks`, (options.healthChecks ?? []).join("\n") + "\n"),
    detachedStart(
      `${dir}/activate.sh`,
      [dir, options.toplevel, options.action, options.rollback, String(options.confirmTimeoutSeconds ?? 60)],
      `nixos-pulumi-switch-${id}`,
    ),
    waitForVerdict(dir, options.timeoutSeconds),
  ].join("\n");

  let session = first;
  let command = start;
  for (;;) {
    try {
      if (!session.isOpen) throw new NixosPulumiError("connection closed", { step: "exec" });
      const result = await session.exec(command);
      if (result.code === 0 && result.stdout.startsWith(AWAITING)) {
        // Magic rollback: confirm over a NEW connection (new TCP connection, new handshake),
        // so a host whose network or sshd broke cannot be confirmed through an old session.
        log("activate: new system active; confirming over a new connection");
        const fresh = await options.reconnect();
        session.close();
        session = fresh;
        await session.execOk(`touch ${dir}/confirm`, "activate: confirm");
        command = waitForVerdict(dir, options.timeoutSeconds);
        continue;
      }
      if (result.code === 0) return await verdict(session, dir, options, result.stdout.split("\n"));
      if (result.code === 124) {
        throw new NixosPulumiError(`activation did not finish within ${options.timeoutSeconds}s`, {
          step: "activate",
          host: first.target,
          hint: `look at ${dir}/output on the machine; raise switch.timeoutSeconds for slow activations`,
        });
      }
      if (result.code !== null) {
        throw new NixosPulumiError(`could not start the activation (exit ${result.code})`, { step: "activate", host: first.target, output: tail(result.stderr) });
      }
    } catch (err) {
      // A dropped connection, or no way back in to confirm: the verdict is still read below.
      if (err instanceof NixosPulumiError && !["exec", "connect"].includes(err.details.step)) throw err;
      command = waitForVerdict(dir, options.timeoutSeconds);
    }
    log("activate: connection dropped; reconnecting to read the verdict");
    session = await options.reconnect();
    command = waitForVerdict(dir, options.timeoutSeconds);
  }
}

function heredoc(file: string, content: string): string {
  const marker = `NIXOS_PULUMI_EOF_${randomBytes(6).toString("hex")}`;
  return `cat > ${shellQuote(file)} <<'${marker}'\n${content.replace(/\n?$/, "\n")}${marker}`;
}

const AWAITING = "awaiting-confirm";

/**
 * Waits on the target for the verdict (`done`, exit 124 on timeout) and prints it; under
 * magic rollback it returns earlier with AWAITING when the new system waits for a confirmation.
 */
function waitForVerdict(dir: string, timeoutSeconds: number): string {
  const ticks = timeoutSeconds * 20;
  return [
    `i=0; while [ ! -e ${dir}/done ]; do`,
    `  if [ -e ${dir}/awaiting-confirm ] && [ ! -e ${dir}/confirm ]; then echo ${AWAITING}; exit 0; fi`,
    `  i=$((i+1)); [ $i -le ${ticks} ] || exit 124; sleep 0.05`,
    `done`,
    `cat ${dir}/result ${dir}/reason ${dir}/status ${dir}/previous ${dir}/generation`,
  ].join("\n");
}

async function verdict(session: SshSession, dir: string, options: ActivateOptions, lines: string[]): Promise<ActivationResult> {
  const [result = "", reason = "", status = "", previous = "", generation = ""] = lines.map((l) => l.trim());
  const output = tail((await session.exec(`cat ${dir}/output`)).stdout, 60);
  await session.exec(`rm -rf ${dir}`);
  if (result === "ok" || result === "reboot-required") {
    const rebootRequired = result === "reboot-required";
    options.log?.(
      rebootRequired
        ? `activate: ${options.action}: the new system has another init; it is the boot default and takes effect after a reboot (switch-to-configuration exit 100)`
        : `activate: ${options.action} ok, generation ${generation}`,
    );
    return { generation: Number(generation || 0), rebootRequired, previousToplevel: previous, output, session };
  }
  throw new NixosPulumiError(`activation of ${options.toplevel} failed: ${failureMeaning(reason, status)}; ${outcomeOf(result, previous)}`, {
    step: "activate",
    host: session.target,
    output,
    hint: "fix the configuration and run `pulumi up` again; the state still records the previous system",
  });
}

function failureMeaning(reason: string, status: string): string {
  if (reason === "health-check") return `a health check failed (exit ${status})`;
  if (reason === "not-confirmed") return "the deployer could not confirm the new system over a new connection in time (magic rollback)";
  if (status === "4") return "some units failed (switch-to-configuration exit 4)";
  if (status === "2") return "the activation script failed (switch-to-configuration exit 2)";
  return `switch-to-configuration exited ${status}`;
}

function outcomeOf(result: string, previous: string): string {
  const outcome: Record<string, string> = {
    "rolled-back": `the host was rolled back to ${previous}`,
    failed: "the host was NOT rolled back (rollback: none, or no previous generation)",
    "rollback-failed": `the rollback to ${previous} failed too: the host needs attention`,
    "profile-failed": "setting the system profile failed; nothing was activated",
  };
  return outcome[result] ?? result;
}
