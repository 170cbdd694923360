import { NixosPulumiError } from "../errors";
import { shellQuote } from "../util/shell-quote";

/** How a non-root session runs commands as root, found out once per session before the first one. */
export type SudoMode = "nopasswd" | "password" | "doas";

interface Run {
  (command: string, stdin?: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

// sudo's "a password is required"; sudo-rs says "interactive authentication is required".
const NEEDS_PASSWORD = /password is required|authentication is required/i;
// sudo: "Sorry, try again." / "incorrect password attempt"; sudo-rs: "incorrect authentication attempt".
const WRONG_PASSWORD = /try again|incorrect (password|authentication)|authentication failed|no password was provided/i;

/**
 * The command that runs `command` as root. With a password: `-S` reads it from the first
 * line of stdin (sudo reads it byte by byte, so the rest stays the command's stdin), `-p ''`
 * prints no prompt, and `-k` makes sudo ask every time: a cached credential would otherwise
 * leave the password line to the command.
 */
export function sudoCommand(mode: SudoMode, command: string): string {
  if (mode === "doas") return `doas -n -- sh -c ${shellQuote(command)}`;
  return mode === "password" ? `sudo -k -S -p '' -- sh -c ${shellQuote(command)}` : `sudo -n -- sh -c ${shellQuote(command)}`;
}

// The shell's "not found" (127) or "cannot execute" (126): no sudo to use.
const NO_COMMAND = new Set([126, 127]);

/** The password as sudo -S reads it: one line, before the command's own stdin. */
export function passwordLine(password: string): Buffer {
  return Buffer.from(`${password}\n`);
}

/**
 * Asks sudo, before any privileged command, whether it needs a password (`sudo -n` fails
 * with "a password is required") and, if so, whether connection.sudoPassword is accepted.
 * Nothing on the machine changes; every refusal names the input and the fix.
 */
export async function probeSudo(run: Run, user: string, password: string | undefined, host: string): Promise<SudoMode> {
  const free = await run("sudo -n -- sh -c true");
  if (free.code === 0) return "nopasswd";
  if (free.code !== null && NO_COMMAND.has(free.code)) return probeDoas(run, user, password, host);
  const said = (free.stderr || free.stdout).trim();
  if (NEEDS_PASSWORD.test(said)) {
    if (password === undefined) {
      throw new NixosPulumiError(`sudo asks ${user} for a password, and connection.sudoPassword is not set; nothing was changed`, {
        step: "sudo",
        host,
        output: said,
        hint:
          `set connection.sudoPassword to ${user}'s password (a secret: pulumi config set --secret), or let ${user} use sudo without one ` +
          `(NixOS: security.sudo.wheelNeedsPassword = false, or a NOPASSWD rule in security.sudo.extraRules)`,
      });
    }
    const withPassword = await run(sudoCommand("password", "true"), passwordLine(password));
    if (withPassword.code === 0) return "password";
    const answer = (withPassword.stderr || withPassword.stdout).trim();
    if (!WRONG_PASSWORD.test(answer)) throw cannotRun(user, withPassword.code, answer, host);
    throw new NixosPulumiError(`sudo refused connection.sudoPassword for ${user}; nothing was changed`, {
      step: "sudo",
      host,
      output: answer,
      hint: `check connection.sudoPassword: it must be ${user}'s login password on the machine`,
    });
  }
  throw cannotRun(user, free.code, said, host);
}

/**
 * No sudo: doas, as nixos-anywhere falls back to it. doas reads no password from stdin, so
 * only a rule without one (`permit nopass`) works; anything else is one error naming the fix.
 */
async function probeDoas(run: Run, user: string, password: string | undefined, host: string): Promise<SudoMode> {
  const doas = await run(sudoCommand("doas", "true"));
  if (doas.code === 0) return "doas";
  const said = (doas.stderr || doas.stdout).trim();
  if (doas.code !== null && NO_COMMAND.has(doas.code)) {
    throw new NixosPulumiError(`the machine has neither sudo nor doas, and connection.user (${user}) is not root`, {
      step: "sudo",
      host,
      output: said,
      hint: 'connect as root (connection.user: "root"), or install sudo on the machine',
    });
  }
  throw new NixosPulumiError(`the machine has no sudo, and doas does not let ${user} run commands as root without a password (exit ${doas.code}); nothing was changed`, {
    step: "sudo",
    host,
    output: said,
    hint:
      `doas takes no password from the provider${password === undefined ? "" : " (connection.sudoPassword is for sudo)"}: ` +
      `add a rule "permit nopass ${user} as root" (NixOS: security.doas.extraRules = [ { users = [ "${user}" ]; noPass = true; } ]), install sudo, or connect as root`,
  });
}

/** sudo's policy does not let `user` run commands as root. */
function cannotRun(user: string, code: number | null, said: string, host: string): NixosPulumiError {
  return new NixosPulumiError(`${user} cannot run commands as root with sudo (exit ${code}); nothing was changed`, {
    step: "sudo",
    host,
    output: said,
    hint: `let ${user} run commands as root through sudo (e.g. add it to the wheel group on NixOS, or a sudoers rule), or connect as root`,
  });
}
