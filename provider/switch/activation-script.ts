import { readFileSync } from "node:fs";
import { SWITCH_DEFAULTS } from "../schema/nixos-host";
import { shippedFile } from "../util/shipped-file";

/** The target-side activation script (activate.sh), read from the package. */
export function activationScript(): string {
  return readFileSync(shippedFile("switch/activate.sh"), "utf8");
}

export interface ActivationArgs {
  /** The run directory the verdict is written to. */
  dir: string;
  toplevel: string;
  action: string;
  rollback: string;
  confirmTimeoutSeconds?: number | undefined;
  installBootloader?: boolean | undefined;
}

/** activate.sh's positional arguments, in its order; the script has no defaults of its own. */
export function activationArgs(a: ActivationArgs): string[] {
  return [a.dir, a.toplevel, a.action, a.rollback, String(a.confirmTimeoutSeconds ?? SWITCH_DEFAULTS.confirmTimeoutSeconds), a.installBootloader ? "1" : "0"];
}
