// Nix passes --arg/--argstr only to the arguments a function names when it has no `...`, and
// silently drops the others: a misspelled expression arg would be ignored. A function with
// `...` receives every arg (seen with Nix 2.8: `{ x, ... }@a` gets `y` in `a`), so an extra arg
// may be meant for its `@args`; there only a near miss of a declared name is reported.
// builtins.functionArgs tells which names the file's function takes (empty when it takes
// `args:` or only `...`); whether it has `...` shows when it is called with a name it does
// not take.
import * as path from "node:path";
import type { FieldIssue } from "../errors";
import { didYouMean } from "../util/did-you-mean";
import { runNix, runProcess } from "./run-nix";

const PROBE = "__nixosPulumiProbe";

function fileLiteral(file: string): string {
  return JSON.stringify(path.resolve(file)).replace(/\$\{/g, "\\${");
}

function formalsExpression(file: string): string {
  return `let f = import (/. + ${fileLiteral(file)}); in if builtins.isFunction f then builtins.attrNames (builtins.functionArgs f) else null`;
}

/** Calls the function with its own names and one it cannot take: Nix checks the names first. */
function probeExpression(file: string): string {
  return `let f = import (/. + ${fileLiteral(file)}); in builtins.seq (f (builtins.mapAttrs (n: v: null) (builtins.functionArgs f) // { ${PROBE} = null; })) null`;
}

const formalsByFile = new Map<string, Promise<Formals | undefined>>();

/**
 * The argument names the expression file's function declares, or undefined when Nix cannot
 * tell. Asked once per file per process: `check` runs one host at a time, and a fleet's hosts
 * usually share one file.
 */
export function expressionFormals(file: string): Promise<Formals | undefined> {
  const key = path.resolve(file);
  let result = formalsByFile.get(key);
  if (!result) {
    result = readFormals(file);
    formalsByFile.set(key, result);
    result.catch(() => formalsByFile.delete(key));
  }
  return result;
}

interface Formals {
  names: string[];
  /** The function has `...`: it receives args it does not name. */
  open: boolean;
}

/** The names the file's function declares, and whether it takes others too; undefined when Nix cannot tell. */
async function readFormals(file: string): Promise<Formals | undefined> {
  // Both at once: the first `check` of a preview waits for them.
  const probing = runProcess("nix-instantiate", ["--eval", "--expr", probeExpression(file)]);
  probing.catch(() => undefined);
  const out = await runNix("nix-instantiate", ["--eval", "--strict", "--json", "--expr", formalsExpression(file)],
    "system.expression.file", "fix the evaluation error above; system.expression.file must be a Nix file");
  const names = JSON.parse(out) as string[] | null;
  if (!names || names.length === 0) return undefined;
  const probe = await probing;
  const closed = new RegExp(`unexpected argument '${PROBE}'`).test(String(probe.stderr));
  return { names, open: !closed };
}

/** Args the expression's function does not take, each with the closest name it does take. */
export async function expressionArgIssues(expression: { file: string; args?: Record<string, unknown> | undefined }): Promise<FieldIssue[]> {
  const given = Object.keys(expression.args ?? {});
  if (given.length === 0) return [];
  const formals = await expressionFormals(expression.file);
  if (!formals) return [];
  return given
    .filter((name) => !formals.names.includes(name))
    .map((name) => ({ name, guess: didYouMean(name, formals.names) }))
    .filter(({ guess }) => !formals.open || guess !== undefined)
    .map(({ name, guess }) => ({
      path: `system.expression.args.${name}`,
      message: `${expression.file} takes no argument "${name}"${guess ? `; did you mean "${guess}"?` : ""} (it takes ${formals.names.map((f) => `"${f}"`).join(", ")})`,
    }));
}
