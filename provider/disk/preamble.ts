// The shell functions every layout script starts with (script-preamble.sh) and the programs
// they call, which each function declares on its own "# tools:" / "# optional tools:" lines.
import { readFileSync } from "node:fs";
import { shippedFile } from "../util/shipped-file";

export interface PreambleTools {
  /** Called whenever the functions run: the create script requires them. */
  required: string[];
  /** Called only as a fallback, when the machine has them, or for LVM/LUKS devices it has. */
  optional: string[];
}

export function preamble(): string {
  return readFileSync(shippedFile("disk/script-preamble.sh"), "utf8");
}

const DECLARATION = /^# (tools|optional tools): (.*)$/gm;
const PROGRAM = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** The tools the preamble's functions declare. */
export function preambleTools(text = preamble()): PreambleTools {
  const found: PreambleTools = { required: [], optional: [] };
  for (const [, kind, list] of text.matchAll(DECLARATION)) {
    for (const tool of list!.trim().split(/\s+/)) {
      if (!PROGRAM.test(tool)) throw new Error(`script-preamble.sh: "${tool}" on a "# ${kind}:" line is no program name`);
      found[kind === "tools" ? "required" : "optional"].push(tool);
    }
  }
  return { required: [...new Set(found.required)].sort(), optional: [...new Set(found.optional)].filter((t) => !found.required.includes(t)).sort() };
}
