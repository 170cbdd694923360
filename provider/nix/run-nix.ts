import { spawn } from "node:child_process";
import { NixosPulumiError } from "../errors";

export interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a local command to its end, stdin closed, keeping its output. Plain child_process:
 * loading execa costs every process that evaluates (the program, the provider) ~0.1 s.
 */
export function runProcess(command: string, args: string[]): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (exitCode, signal) =>
      resolve({ exitCode, signal, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }),
    );
  });
}

/** Runs a local nix command; failures carry nix's stderr and name the input field. */
export async function runNix(command: string, args: string[], field: string, hint: string): Promise<string> {
  let result: ProcessResult;
  try {
    result = await runProcess(command, args);
  } catch (err) {
    throw new NixosPulumiError(`cannot run \`${command}\` on this machine: ${(err as Error).message}`, { step: field, hint });
  }
  if (result.exitCode !== 0) {
    throw new NixosPulumiError(`\`${command} ${args.join(" ")}\` failed (exit ${result.exitCode ?? result.signal})`, {
      step: field,
      output: result.stderr.trim().split("\n").slice(-30).join("\n"),
      hint,
    });
  }
  return result.stdout.trim();
}
