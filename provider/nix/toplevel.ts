// The NixOS system a host should run: its toplevel store path and the derivation that builds
// it, found by one evaluation (for `pulumi preview` and `check`), then realised from that
// derivation (for `pulumi up`) without evaluating again. Evaluations run concurrently,
// bounded by the cores, and are cached per system for the whole process.
import { existsSync, readFileSync } from "node:fs";
import * as os from "node:os";
import { NixosPulumiError } from "../errors";
import { canonicalJson } from "../util/canonical-json";
import type { SystemSpec } from "../schema/nixos-host";
import { runNix } from "./run-nix";
import { batchEvaluator } from "./batch-evaluation";
import { refuseNonNixosToplevel } from "./nixos-toplevel";
import { evaluateWithSpecialArgs } from "./flake-special-args";

/** The `nix` command's flake support is experimental: a default Nix refuses it without this. */
export const NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"];

export interface Evaluation {
  toplevel: string;
  /** The .drv that builds the toplevel; undefined for a prebuilt system.storePath. */
  derivation?: string | undefined;
}

const evaluated = new Map<string, Promise<Evaluation>>();
const built = new Map<string, Promise<string>>();

/** The key systems share an evaluation by (relative expression files resolve against cwd). */
export function systemKey(system: SystemSpec): string {
  return canonicalJson({ system, cwd: process.cwd() });
}

function cached<T>(cache: Map<string, Promise<T>>, key: string, compute: () => Promise<T>): Promise<T> {
  let result = cache.get(key);
  if (!result) {
    result = compute();
    cache.set(key, result);
    result.catch(() => cache.delete(key));
  }
  return result;
}

// Evaluation is CPU-bound: more nix processes than cores only make each one slower.
const slots = Math.max(1, os.availableParallelism());
let running = 0;
const waiting: (() => void)[] = [];

async function bounded<T>(run: () => Promise<T>): Promise<T> {
  if (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await run();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function flakeAttr(flake: string): string {
  const hash = flake.lastIndexOf("#");
  return `${flake.slice(0, hash)}#nixosConfigurations.${JSON.stringify(flake.slice(hash + 1))}.config.system.build.toplevel`;
}

function expressionArgs(expression: { file: string; attr?: string | undefined; args?: Record<string, string | number | boolean> | undefined }, suffix: string): string[] {
  const attrPath = [expression.attr, suffix].filter(Boolean).join(".");
  const args = [expression.file];
  if (attrPath) args.push("-A", attrPath);
  for (const [name, value] of Object.entries(expression.args ?? {})) {
    if (typeof value === "string") args.push("--argstr", name, value);
    else args.push("--arg", name, String(value));
  }
  return args;
}

/** The default output ("out") a derivation file declares, read from its ATerm text. */
export function derivationOutput(drv: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(drv, "utf8");
  } catch {
    return undefined;
  }
  const match = /^Derive\(\[\("out","(\/nix\/store\/[^"]+)"/.exec(text);
  return match?.[1];
}

async function evaluate(system: SystemSpec): Promise<Evaluation> {
  if ("storePath" in system) {
    await runNix("nix-store", ["--check-validity", system.storePath], "system.storePath",
      `${system.storePath} is not a valid path in the local Nix store: build it first (nix-build / nix build), or use system.flake or system.expression`);
    refuseNonNixosToplevel(system.storePath, "system.storePath");
    return { toplevel: system.storePath };
  }
  if ("flake" in system && system.specialArgs !== undefined) return evaluateWithSpecialArgs(system.flake, system.specialArgs);
  if ("flake" in system) {
    // One evaluation gives both; evaluating drvPath writes the .drv to the store for realising.
    const json = await runNix("nix", [...NIX_FEATURES, "eval", "--json", flakeAttr(system.flake), "--apply", "d: { out = d.outPath; drv = d.drvPath; }"],
      "system.flake", `fix the evaluation error above, or check that nixosConfigurations.${system.flake.split("#")[1]} exists in the flake`);
    const { out, drv } = JSON.parse(json) as { out: string; drv: string };
    return { toplevel: out, derivation: drv };
  }
  const hint = "fix the evaluation error above; system.expression.attr must select a NixOS toplevel derivation";
  const drv = (await runNix("nix-instantiate", expressionArgs(system.expression, ""), "system.expression", hint)).split("\n").pop()!.trim();
  const toplevel = derivationOutput(drv);
  if (!toplevel) {
    throw new NixosPulumiError(`system.expression instantiated to ${drv}, which has no "out" output`, { step: "system.expression", hint });
  }
  return { toplevel, derivation: drv };
}

const evaluateBatched = batchEvaluator((expression) => bounded(() => evaluate({ expression })) as Promise<Required<Evaluation>>, bounded);

/** The toplevel and its derivation, by evaluation only (no build); one per system per process. */
export function evaluateSystem(system: SystemSpec): Promise<Evaluation> {
  return cached(evaluated, systemKey(system), () => ("expression" in system ? evaluateBatched(system.expression) : bounded(() => evaluate(system))));
}

/** Records an evaluation made elsewhere (the program process) so this process reuses it. */
export function rememberEvaluation(system: SystemSpec, evaluation: Evaluation): void {
  const key = systemKey(system);
  if (!evaluated.has(key)) evaluated.set(key, Promise.resolve(evaluation));
}

/** The toplevel store path, by evaluation only (no build). */
export async function evalToplevel(system: SystemSpec): Promise<string> {
  return (await evaluateSystem(system)).toplevel;
}

/** The toplevel's derivation (.drv) path, or undefined for a prebuilt store path. */
export async function derivationOf(system: SystemSpec): Promise<string | undefined> {
  return (await evaluateSystem(system)).derivation;
}

/**
 * Builds the toplevel locally by realising the derivation its evaluation found, and returns
 * its store path. Evaluates only when this process has no evaluation, or its .drv is gone.
 */
export function buildToplevel(system: SystemSpec): Promise<string> {
  return cached(built, systemKey(system), async () => {
    let { toplevel, derivation } = await evaluateSystem(system);
    if (!derivation) return toplevel;
    if (!existsSync(derivation)) {
      // Collected since evaluation (nix-collect-garbage between preview and up): instantiate again.
      evaluated.delete(systemKey(system));
      ({ toplevel, derivation } = await evaluateSystem(system));
    }
    const field = "flake" in system ? "system.flake" : "system.expression";
    const out = await runNix("nix-store", ["--realise", derivation!], field, "fix the build error above");
    return out.split("\n").filter(Boolean).find((p) => p === toplevel) ?? out.split("\n").pop()!.trim();
  });
}
