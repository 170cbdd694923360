// Deployer side of a switch: upload the activation script, start it detached on the target,
// and wait for its verdict, read back from files, over a new connection if the old one
// dropped. The verdict is never inferred from a dropped connection.
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { ActivationFailedError, ConnectFailedError, ConnectionLostError, NixosPulumiError } from "../errors";
import { closingReconnectsOnFailure } from "../ssh/reconnected";
import { engineGone } from "../util/engine-lifetime";
import type { Progress } from "../progress";
import { shellJoin, shellQuote, tail, type SshSession } from "../ssh";
import { makeRunDirCommand, PRIVATE_ROOT, REFUSED_EXIT } from "../ssh/private-paths";
import { activationArgs, activationScript } from "./activation-script";
import { parseHostState, stateCommand, type HostState } from "./host-state";

export interface ActivateOptions {
  toplevel: string;
  action: "switch" | "boot" | "test";
  rollback: "magic" | "on-failure" | "none";
  /** magic: how long the new system waits for the deployer's confirmation. */
  confirmTimeoutSeconds?: number;
  timeoutSeconds: number;
  healthChecks?: string[];
  /** NIXOS_INSTALL_BOOTLOADER=1 for the new system's switch-to-configuration. */
  installBootloader?: boolean;
  log?: Progress;
  /**
   * Opens a fresh session (new TCP connection and handshake) when the current one dropped,
   * waiting for the machine up to confirmTimeoutSeconds + timeoutSeconds.
   */
  reconnect: () => Promise<SshSession>;
  /**
   * When given, the activation starts only once it settles: meanwhile its command makes the
   * run directory and writes its files, and starts nothing. When it rejects, the command ends
   * unstarted (its directory removed) and activate throws that error.
   */
  startWhen?: Promise<void>;
}

export interface ActivationResult {
  generation: number;
  /** switch-to-configuration exited 100: the new system takes effect at the next boot. */
  rebootRequired: boolean;
  previousToplevel: string;
  output: string;
  /** The open session the verdict was read over (a new one if the first dropped). */
  session: SshSession;
  /** What the machine runs once the verdict was there (compared with the new system: needsReboot), read with it. */
  state: HostState;
  /**
   * The run directory's removal, started once the verdict was read (a verdict lost with the
   * connection is read again, or by the next run); settles either way. Await it before closing `session`.
   */
  runDirRemoved: Promise<void>;
}


/**
 * Starts the script detached: a transient systemd unit (no --pipe, nixpkgs #462179) or
 * setsid without systemd. As nixos-rebuild-ng does, the unit gets LOCALE_ARCHIVE and the
 * script runs by absolute path: a NixOS unit's PATH holds only systemd's bin directory.
 */
function detachedStart(script: string, args: string[], unit: string): string {
  const command = shellJoin(["/bin/sh", script, ...args]);
  return [
    `np_init=""; { read -r np_init; } 2>/dev/null < /proc/1/comm`,
    `if [ "$np_init" = systemd ] && command -v systemd-run >/dev/null; then`,
    `  systemd-run --quiet --collect --no-ask-password --unit ${shellQuote(unit)} --service-type=exec \\`,
    `    -E "LOCALE_ARCHIVE=\${LOCALE_ARCHIVE:-/run/current-system/sw/lib/locale/locale-archive}" ${command}`,
    `else`,
    `  setsid ${command} </dev/null >/dev/null 2>&1 &`,
    `fi`,
  ].join("\n");
}

/** The exit code of a command that found the activation not started (and removed its directory). */
const NOT_STARTED_EXIT = 125;

export function activate(first: SshSession, options: ActivateOptions): Promise<ActivationResult> {
  return closingReconnectsOnFailure(options.reconnect, (reconnect) => activateOver(first, { ...options, reconnect }));
}

async function activateOver(first: SshSession, options: ActivateOptions): Promise<ActivationResult> {
  const id = `${Date.now()}-${randomBytes(4).toString("hex")}`;
  // left-verdicts.ts reads the verdicts of these run directories that a deployer could not.
  const dir = `${PRIVATE_ROOT}/switch.${id}`;
  const log = options.log ?? (() => {});
  log(`activate: ${options.action} ${options.toplevel} (rollback: ${options.rollback})`);
  // One command writes the script, starts it detached and waits for its verdict; if the
  // connection drops meanwhile, a new connection runs only the wait again.
  const gate = options.startWhen ? new PassThrough() : undefined;
  let gateError: { error: unknown } | undefined;
  options.startWhen?.then(
    () => gate!.end("go\n"),
    (error: unknown) => {
      gateError = { error };
      gate!.end();
    },
  );
  const start = [
    `${makeRunDirCommand(dir, "switch")} || exit ${REFUSED_EXIT}`,
    writeFile(`${dir}/health-checks`, (options.healthChecks ?? []).join("\n") + "\n"),
    // For a later run that reads this verdict if we cannot (left-verdicts.ts).
    `echo ${shellQuote(options.toplevel)} > ${dir}/toplevel`,
    ...(gate ? [`IFS= read -r np_go || np_go=""; [ "$np_go" = go ] || { rm -rf ${dir}; exit ${NOT_STARTED_EXIT}; }`] : []),
    // Written last before the start: without it, the activation was never started.
    writeFile(`${dir}/activate.sh`, activationScript()),
    detachedStart(
      `${dir}/activate.sh`,
      activationArgs({ dir, ...options }),
      `nixos-pulumi-switch-${id}`,
    ),
    waitForVerdict(dir, options),
  ].join("\n");

  let session = first;
  let command = start;
  // The engine that asked for this deploy went away before anything was started: start nothing.
  if (engineGone.aborted) throw new NixosPulumiError(`not activating: ${String(engineGone.reason)}`, { step: "activate", host: first.target });
  for (;;) {
    try {
      if (!session.isOpen) throw new ConnectionLostError("connection closed", { step: "exec" });
      const result = await session.exec(command, gate && command === start ? { stdin: gate } : {});
      if (gateError) throw gateError.error;
      if (result.code === NOT_STARTED_EXIT) {
        throw new NixosPulumiError("the activation was not started: the connection dropped before it was; nothing was activated", {
          step: "activate",
          host: first.target,
          hint: "run `pulumi up` again",
        });
      }
      if (result.code === 0 && result.stdout.startsWith(AWAITING)) {
        // Magic rollback: confirm over a NEW connection (new TCP connection, new handshake),
        // so a host whose network or sshd broke cannot be confirmed through an old session.
        log("activate: new system active; confirming over a new connection");
        const fresh = await options.reconnect();
        session.close();
        session = fresh;
        await session.execOk(`touch ${dir}/confirm`, "activate: confirm");
        command = waitForVerdict(dir, options);
        continue;
      }
      if (result.code === 0) return await verdict(session, dir, options, result.stdout);
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
      if (gateError) throw gateError.error;
      // Only a dropped connection, or no way back in to confirm, is read past: the verdict is
      // read below over a new connection. Anything else is what failed, and says so.
      if (!(err instanceof ConnectionLostError || err instanceof ConnectFailedError)) throw err;
    }
    if (engineGone.aborted) {
      throw new NixosPulumiError(`stopped waiting for the activation's verdict: ${String(engineGone.reason)}`, {
        step: "activate",
        host: first.target,
        hint: `the activation runs on, detached, and records its verdict in ${dir}; the next \`pulumi up\` reads it`,
      });
    }
    log("activate: connection dropped; reconnecting to read the verdict");
    session.close();
    session = await reconnectForVerdict(options, dir, first.target);
    command = waitForVerdict(dir, options);
  }
}

/**
 * A new connection to read the verdict. When the machine stays out of reach, the verdict is
 * unknown, not a failure: the activation runs on and records it in `dir` for the next run.
 */
async function reconnectForVerdict(options: ActivateOptions, dir: string, host: string): Promise<SshSession> {
  try {
    return await options.reconnect();
  } catch (err) {
    if (!(err instanceof ConnectFailedError)) throw err;
    throw new NixosPulumiError(
      `the verdict of the activation of ${options.toplevel} is unknown: the machine could not be reached again to read it (${err.summary.split("\n")[0]})`,
      {
        step: "activate",
        host,
        hint:
          `the activation runs on, detached, and records its verdict on the machine in ${dir} (result, reason, output); ` +
          "the state still records the previous system. Once the machine is reachable, the next `pulumi up` reads that verdict and records the system the host runs " +
          "(switching again only if it did not succeed); `pulumi refresh` records what the host runs now",
      },
    );
  }
}

/** Writes `content` to `file` with the shell's own printf (no process: each costs 10-30 ms on a busy machine). */
function writeFile(file: string, content: string): string {
  return `printf '%s' ${shellQuote(content.replace(/\n?$/, "\n"))} > ${shellQuote(file)}`;
}

const AWAITING = "awaiting-confirm";

/** Where the verdict's lines end and the tail of the activation's output begins. */
const OUTPUT_MARKER = "@@nixos-pulumi-activation-output";
/** Where the output's tail ends and the machine's state, read after the verdict, begins. */
const STATE_MARKER = "@@nixos-pulumi-state-after";
const OUTPUT_LINES = 60;
/** Polled this often for the first 2 s (most activations end within them), then every 50 ms. */
const FAST_MS = { builtin: 5, sleep: 20 };

/**
 * A pause of $1 seconds: bash's `read -t` on a pipe no one writes to costs no process (each
 * costs 10-30 ms on a busy machine), so bash polls finely; another shell (or bash as `sh`,
 * without process substitution) runs `sleep`. The pipe is open read-write, so `read` waits
 * for its timeout instead of an end of file.
 */
const TICK = [
  `np_fast_ms=${FAST_MS.sleep}; np_fast=${FAST_MS.sleep / 1000}; np_tick() { sleep "$1"; }`,
  `if [ -n "\${BASH_VERSION:-}" ] && ! shopt -oq posix && eval 'exec 7<> <(:)' 2>/dev/null; then`,
  `  np_fast_ms=${FAST_MS.builtin}; np_fast=${FAST_MS.builtin / 1000}; np_tick() { read -r -t "$1" -u 7 _ || :; }`,
  `fi`,
].join("\n");

/**
 * Waits on the target for the verdict (`done`, exit 124 on timeout) and prints it with the
 * tail of the output and the machine's state; under magic rollback it returns earlier with
 * AWAITING when the new system waits for a confirmation.
 */
function waitForVerdict(dir: string, { timeoutSeconds, toplevel }: Pick<ActivateOptions, "timeoutSeconds" | "toplevel">): string {
  return [
    `[ -e ${dir}/activate.sh ] || { rm -rf ${dir}; exit ${NOT_STARTED_EXIT}; }`,
    TICK,
    // The time waited counts the pauses only, in ms.
    `np_ms=0; while [ ! -e ${dir}/done ]; do`,
    `  if [ -e ${dir}/awaiting-confirm ] && [ ! -e ${dir}/confirm ]; then echo ${AWAITING}; exit 0; fi`,
    `  [ $np_ms -lt ${timeoutSeconds * 1000} ] || exit 124`,
    `  if [ $np_ms -lt 2000 ]; then np_tick $np_fast; np_ms=$((np_ms + np_fast_ms)); else np_tick 0.05; np_ms=$((np_ms + 50)); fi`,
    `done`,
    `exec 7<&-`,
    // One line each, read by the shell itself (no cat process).
    `for np_f in result reason status previous generation; do np_l=""; { IFS= read -r np_l || :; } < ${dir}/$np_f || exit; printf '%s\\n' "$np_l"; done`,
    `echo ${OUTPUT_MARKER}; tail -n ${OUTPUT_LINES} ${dir}/output 2>/dev/null || cat ${dir}/output`,
    `echo; echo ${STATE_MARKER}`,
    stateCommand(toplevel),
  ].join("\n");
}

async function verdict(session: SshSession, dir: string, options: ActivateOptions, printed: string): Promise<ActivationResult> {
  const marker = printed.indexOf(`${OUTPUT_MARKER}\n`);
  const stateAt = printed.lastIndexOf(`\n${STATE_MARKER}\n`);
  const lines = (marker < 0 ? printed : printed.slice(0, marker)).split("\n");
  const [result = "", reason = "", status = "", previous = "", generation = ""] = lines.map((l) => l.trim());
  const output = marker < 0 ? "" : tail(printed.slice(marker + OUTPUT_MARKER.length + 1, stateAt < 0 ? undefined : stateAt), OUTPUT_LINES);
  const state = parseHostState(stateAt < 0 ? "" : printed.slice(stateAt + STATE_MARKER.length + 2));
  // Removed only once read: a verdict lost with the connection is read again, or by the next run.
  const runDirRemoved = session.exec(`rm -rf ${dir}`).then(
    () => undefined,
    () => undefined,
  );
  if (result === "ok" || result === "reboot-required") {
    const rebootRequired = result === "reboot-required";
    options.log?.(
      rebootRequired
        ? `activate: ${options.action}: the new system has another init; it is the boot default and takes effect after a reboot (switch-to-configuration exit 100)`
        : `activate: ${options.action} ok, generation ${generation}`,
    );
    return { generation: Number(generation || 0), rebootRequired, previousToplevel: previous, output, session, state, runDirRemoved };
  }
  await runDirRemoved;
  throw new ActivationFailedError(
    `activation of ${options.toplevel} failed: ${failureMeaning(reason, status)}; ${outcomeOf(result, previous)}`,
    {
      step: "activate",
      host: session.target,
      output,
      hint: /Failed to install bootloader/.test(output)
        ? "the machine's bootloader is missing or broken: set switch.installBootloader: true to install it again (nixos-rebuild --install-bootloader), then run `pulumi up`"
        : "fix the configuration and run `pulumi up` again; the state still records the previous system",
    },
    { result, reason, status, previous },
  );
}

function failureMeaning(reason: string, status: string): string {
  if (reason === "health-check") return `a health check failed (exit ${status})`;
  if (reason === "init-interface")
    return 'the new system has another init than the running one (switch-to-configuration exit 100): action "test" cannot activate it without a reboot, and "test" does not make it the boot default';
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
    "not-activated": "nothing was activated; the host runs what it ran before",
  };
  return outcome[result] ?? result;
}
