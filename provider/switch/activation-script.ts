import { readFileSync } from "node:fs";
import { shippedFile } from "../util/shipped-file";

/** The target-side activation script (activate.sh), read from the package. */
export function activationScript(): string {
  return readFileSync(shippedFile("switch/activate.sh"), "utf8");
}
