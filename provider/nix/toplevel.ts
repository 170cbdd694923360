// The NixOS system a host should run: its toplevel store path evaluated without building
// (for `pulumi preview`), and built (for `pulumi up`). Cached per system for the whole run.
import { canonicalJson } from "../util/canonical-json";
import type { SystemSpec } from "../schema/nixos-host";
import { runNix } from "./run-nix";

/** The `nix` command's flake support is experimental: a default Nix refuses it without this. */
export const NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"];

const evaluated = new Map<string, Promise<string>>();
const built = new Map<string, Promise<string>>();

function cached(cache: Map<string, Promise<string>>, system: SystemSpec, compute: () => Promise<string>): Promise<string> {
  const key = canonicalJson(system);
  let result = cache.get(key);
  if (!result) {
    result = compute();
    cache.set(key, result);
    result.catch(() => cache.delete(key));
  }
  return result;
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

/** The toplevel store path, by evaluation only (no build). */
export function evalToplevel(system: SystemSpec): Promise<string> {
  return cached(evaluated, system, async () => {
    if ("storePath" in system) {
      await runNix("nix-store", ["--check-validity", system.storePath], "system.storePath",
        `${system.storePath} is not a valid path in the local Nix store: build it first (nix-build / nix build), or use system.flake or system.expression`);
      return system.storePath;
    }
    if ("flake" in system) {
      return runNix("nix", [...NIX_FEATURES, "eval", "--raw", `${flakeAttr(system.flake)}.outPath`], "system.flake",
        `fix the evaluation error above, or check that nixosConfigurations.${system.flake.split("#")[1]} exists in the flake`);
    }
    const out = await runNix("nix-instantiate", ["--eval", "--json", ...expressionArgs(system.expression, "outPath")], "system.expression",
      "fix the evaluation error above; system.expression.attr must select a NixOS toplevel derivation");
    return JSON.parse(out) as string;
  });
}

/** Builds the toplevel locally and returns its store path. */
export function buildToplevel(system: SystemSpec): Promise<string> {
  return cached(built, system, async () => {
    if ("storePath" in system) return evalToplevel(system);
    if ("flake" in system) {
      const json = await runNix("nix", [...NIX_FEATURES, "build", "--no-link", "--json", flakeAttr(system.flake)], "system.flake", "fix the build error above");
      return (JSON.parse(json) as { outputs: { out: string } }[])[0]!.outputs.out;
    }
    const out = await runNix("nix-build", ["--no-out-link", ...expressionArgs(system.expression, "")], "system.expression", "fix the build error above");
    return out.split("\n").pop()!.trim();
  });
}

/** The toplevel's derivation (.drv) path, or undefined for a prebuilt store path. */
export async function derivationOf(system: SystemSpec): Promise<string | undefined> {
  if ("storePath" in system) return undefined;
  if ("flake" in system) {
    return runNix("nix", [...NIX_FEATURES, "eval", "--raw", `${flakeAttr(system.flake)}.drvPath`], "system.flake", "fix the evaluation error above");
  }
  const out = await runNix("nix-instantiate", expressionArgs(system.expression, ""), "system.expression", "fix the evaluation error above");
  return out.split("\n").pop()!.trim();
}
