// Nix passes --arg/--argstr only to the arguments a function names and silently drops the
// others when it has `...`: a misspelled expression arg would be ignored. builtins.functionArgs
// tells which names the file's function takes (empty when it takes `args:` or only `...`).
import * as path from "node:path";
import type { FieldIssue } from "../errors";
import { didYouMean } from "../util/did-you-mean";
import { runNix } from "./run-nix";

function formalsExpression(file: string): string {
  const literal = JSON.stringify(path.resolve(file)).replace(/\$\{/g, "\\${");
  return `let f = import (/. + ${literal}); in if builtins.isFunction f then builtins.attrNames (builtins.functionArgs f) else null`;
}

const formalsByFile = new Map<string, Promise<string[] | undefined>>();

/**
 * The argument names the expression file's function declares, or undefined when Nix cannot
 * tell. Asked once per file per process: `check` runs one host at a time, and a fleet's hosts
 * usually share one file.
 */
export function expressionFormals(file: string): Promise<string[] | undefined> {
  const key = path.resolve(file);
  let result = formalsByFile.get(key);
  if (!result) {
    result = readFormals(file);
    formalsByFile.set(key, result);
    result.catch(() => formalsByFile.delete(key));
  }
  return result;
}

async function readFormals(file: string): Promise<string[] | undefined> {
  const out = await runNix("nix-instantiate", ["--eval", "--strict", "--json", "--expr", formalsExpression(file)],
    "system.expression.file", "fix the evaluation error above; system.expression.file must be a Nix file");
  const names = JSON.parse(out) as string[] | null;
  return names && names.length > 0 ? names : undefined;
}

/** Args the expression's function does not take, each with the closest name it does take. */
export async function expressionArgIssues(expression: { file: string; args?: Record<string, unknown> | undefined }): Promise<FieldIssue[]> {
  const given = Object.keys(expression.args ?? {});
  if (given.length === 0) return [];
  const formals = await expressionFormals(expression.file);
  if (!formals) return [];
  return given
    .filter((name) => !formals.includes(name))
    .map((name) => {
      const guess = didYouMean(name, formals);
      return {
        path: `system.expression.args.${name}`,
        message: `${expression.file} takes no argument "${name}"${guess ? `; did you mean "${guess}"?` : ""} (it takes ${formals.map((f) => `"${f}"`).join(", ")})`,
      };
    });
}
