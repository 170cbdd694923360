import { readFileSync } from "node:fs";
import * as path from "node:path";

/** The target-side activation script (activate.sh), read from the package. */
export function activationScript(): string {
  return readFileSync(path.resolve(__dirname, "../../../provider/switch/activate.sh"), "utf8");
}
