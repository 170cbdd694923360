// Hosts whose systems come from the same expression file are evaluated together: one nix
// process per core for all of them, not one per host (a nix process costs more to start than
// a small system costs to evaluate). Each batch gives every host's toplevel and .drv, or null
// where the batch cannot reproduce what `nix-instantiate <file> --arg …` would do for that
// host; those hosts, and every host of a batch that failed, are evaluated one by one, so
// errors name the host's own inputs.
import * as os from "node:os";
import * as path from "node:path";
import { runNix } from "./run-nix";

export interface Expression {
  file: string;
  attr?: string | undefined;
  args?: Record<string, string | number | boolean> | undefined;
}

export interface BatchResult {
  toplevel: string;
  derivation: string;
}

type Single = (expression: Expression) => Promise<BatchResult>;
type Bounded = <T>(run: () => Promise<T>) => Promise<T>;

interface Request {
  expression: Expression;
  resolve: (r: BatchResult) => void;
  reject: (e: unknown) => void;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_'-]*$/;

function nixString(text: string): string | undefined {
  // JSON's escapes are Nix's, except \u….: leave such strings to the one-by-one path.
  if (/[\u0000-\u001f\u007f]/.test(text)) return undefined;
  return JSON.stringify(text).replace(/\$\{/g, "\\${");
}

/** The Nix expression selecting one host's toplevel, or undefined when only nix-instantiate's own handling is exact. */
function hostExpression(expression: Expression): string | undefined {
  const bindings: string[] = [];
  for (const [name, value] of Object.entries(expression.args ?? {})) {
    if (!IDENT.test(name)) return undefined;
    const literal = typeof value === "string" ? nixString(value) : typeof value === "number" && Number.isFinite(value) ? `(${value})` : typeof value === "boolean" ? String(value) : undefined;
    if (literal === undefined) return undefined;
    bindings.push(`${name} = ${literal};`);
  }
  const attrs = expression.attr ? expression.attr.split(".") : [];
  if (!attrs.every((a) => IDENT.test(a))) return undefined;
  const select = attrs.map((a) => `.${JSON.stringify(a)}`).join("");
  return `(one { ${bindings.join(" ")} } (v: v${select}))`;
}

/**
 * `call` applies the file's function as nix-instantiate's automatic call does, when that is
 * certain: a function with named arguments, every given arg among them. Else null.
 */
function batchExpression(file: string, hosts: string[]): string | undefined {
  const literal = nixString(path.resolve(file));
  if (!literal) return undefined;
  return `let
    f = import (/. + ${literal});
    fa = builtins.functionArgs f;
    call = args: if builtins.isFunction f
      then (if fa != { } && builtins.all (n: fa ? \${n}) (builtins.attrNames args) then f args else null)
      else (if args == { } then f else null);
    one = args: select: let v = call args; in if v == null then null else let d = select v; in { out = d.outPath; drv = d.drvPath; };
  in [ ${hosts.join(" ")} ]`;
}

export function batchEvaluator(single: Single, bounded: Bounded): (expression: Expression) => Promise<BatchResult> {
  let pending: Request[] = [];
  let scheduled = false;

  async function runChunk(file: string, chunk: Request[]): Promise<void> {
    const parts = chunk.map((r) => hostExpression(r.expression));
    const batchable = chunk.filter((_, i) => parts[i] !== undefined);
    const alone = chunk.filter((_, i) => parts[i] === undefined);
    const expr = batchable.length > 1 ? batchExpression(file, parts.filter((p): p is string => p !== undefined)) : undefined;
    let results: ({ out: string; drv: string } | null)[] | undefined;
    if (expr) {
      // Evaluating drvPath in --read-write-mode writes each .drv, ready for nix-store --realise.
      results = await bounded(() => runNix("nix-instantiate", ["--eval", "--strict", "--json", "--read-write-mode", "--expr", expr], "system.expression", ""))
        .then((out) => JSON.parse(out) as ({ out: string; drv: string } | null)[])
        .catch(() => undefined);
    }
    const settle = (r: Request) => single(r.expression).then(r.resolve, r.reject);
    const work: Promise<void>[] = alone.map(settle);
    batchable.forEach((r, i) => {
      const got = results?.[i];
      if (got && typeof got.out === "string" && typeof got.drv === "string") r.resolve({ toplevel: got.out, derivation: got.drv });
      else work.push(settle(r));
    });
    await Promise.all(work);
  }

  function flush(): void {
    scheduled = false;
    const requests = pending;
    pending = [];
    const byFile = new Map<string, Request[]>();
    for (const r of requests) {
      const key = path.resolve(r.expression.file);
      byFile.set(key, [...(byFile.get(key) ?? []), r]);
    }
    const cores = Math.max(1, os.availableParallelism());
    for (const [file, list] of byFile) {
      const chunks = Math.min(cores, list.length);
      for (let c = 0; c < chunks; c++) {
        const chunk = list.filter((_, i) => i % chunks === c);
        void runChunk(file, chunk).catch((err) => chunk.forEach((r) => r.reject(err)));
      }
    }
  }

  return (expression) =>
    new Promise<BatchResult>((resolve, reject) => {
      pending.push({ expression, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        // The program constructs its hosts in one go; their system inputs resolve within a few
        // ticks of each other. A short wait gathers them into one batch.
        setTimeout(flush, 5);
      }
    });
}
