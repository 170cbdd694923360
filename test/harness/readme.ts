// The README's fenced code blocks, so tests can check every one of them.
import { readFileSync } from "node:fs";
import * as path from "node:path";

export const README = path.resolve(__dirname, "..", "..", "..", "README.md");

export interface CodeBlock {
  lang: string;
  body: string;
  /** The section (## heading) it is in. */
  section: string;
  /** The last non-empty line of text before the block ("Save as `index.ts`:"). */
  lead: string;
  line: number;
}

export function readmeBlocks(text = readFileSync(README, "utf8")): CodeBlock[] {
  const lines = text.split("\n");
  const blocks: CodeBlock[] = [];
  let section = "";
  let lead = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^## /.test(line)) section = line.slice(3).trim();
    const open = /^(\s*)```(\S*)\s*$/.exec(line);
    if (!open) {
      if (line.trim()) lead = line.trim();
      continue;
    }
    const indent = open[1]!.length;
    const body: string[] = [];
    const start = i + 1;
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(indent));
    blocks.push({ lang: open[2]!, body: body.join("\n") + "\n", section, lead, line: start });
    lead = "";
  }
  return blocks;
}
