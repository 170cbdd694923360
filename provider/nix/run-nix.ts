import { execa } from "execa";
import { NixosPulumiError } from "../errors";

/** Runs a local nix command; failures carry nix's stderr and name the input field. */
export async function runNix(command: string, args: string[], field: string, hint: string): Promise<string> {
  const result = await execa(command, args, { reject: false, stdin: "ignore", maxBuffer: 256 * 1024 * 1024 });
  if (result.exitCode !== 0) {
    throw new NixosPulumiError(`\`${command} ${args.join(" ")}\` failed (exit ${result.exitCode ?? result.signal})`, {
      step: field,
      output: String(result.stderr).trim().split("\n").slice(-30).join("\n"),
      hint,
    });
  }
  return String(result.stdout).trim();
}
