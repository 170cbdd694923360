// A flake's nixosConfigurations.<name> extended with module arguments from the program, as
// nixos-anywhere's Terraform `special_args` (terraform/nix-build/nix-build.sh): the
// configuration's `extendModules { specialArgs = …; }` (nixpkgs lib/modules.nix; nixosSystem
// keeps it on its result). The values reach Nix as one JSON string through --argstr, read by
// builtins.fromJSON in a fixed expression: nothing of them is ever parsed as Nix code.
// Evaluation stays pure: `builtins.getFlake` gets the locked reference `nix flake metadata`
// resolves (the flake's own lock file applies), or, for a dirty Git tree, the source it copied
// to the store with its NAR hash (what nixos-anywhere locks with).
import * as path from "node:path";
import { NixosPulumiError } from "../errors";
import { runNix, runProcess } from "./run-nix";
import type { Evaluation } from "./toplevel";

const FEATURES = ["--extra-experimental-features", "nix-command flakes"];

/** The extended configuration given to `pick` (fixed Nix code, as this file's constants). */
function extended(pick: string): string {
  return `{ flake, name, specialArgs }:
  let
    configuration = (builtins.getFlake flake).nixosConfigurations.\${name};
    extended = if configuration ? extendModules
      then configuration.extendModules { specialArgs = builtins.fromJSON specialArgs; }
      else throw "nixosConfigurations.\${name} has no extendModules (it is not made by nixpkgs' lib.nixosSystem), so it cannot take system.specialArgs";
  in (${pick}) extended`;
}

const TOPLEVEL = extended("c: let toplevel = c.config.system.build.toplevel; in { out = toplevel.outPath; drv = toplevel.drvPath; }");

/** A flake reference with a path given relative to the working directory, made absolute. */
function absoluteRef(ref: string): string {
  if (ref.startsWith(".") || ref.startsWith("/")) return path.resolve(ref);
  if (ref.startsWith("path:.")) return `path:${path.resolve(ref.slice("path:".length))}`;
  return ref;
}

interface FlakeMetadata {
  url?: string;
  path?: string;
  locked?: { narHash?: string };
}

/** A reference `builtins.getFlake` accepts in pure evaluation: locked to what the flake is now. */
export function lockedUrl(metadata: FlakeMetadata): string | undefined {
  const url = metadata.url;
  if (url && /[?&](rev|narHash)=/.test(url)) return url;
  if (metadata.path && metadata.locked?.narHash) return `path:${metadata.path}?narHash=${encodeURIComponent(metadata.locked.narHash)}`;
  return undefined;
}

// One lock per flake and process: a host's toplevel and its diskLayout check, and every host
// of a fleet on the same flake, evaluate against the same locked reference.
const locks = new Map<string, Promise<string>>();

function lockFlake(ref: string): Promise<string> {
  const key = absoluteRef(ref);
  let locked = locks.get(key);
  if (!locked) {
    locked = lockFlakeNow(key);
    locks.set(key, locked);
    locked.catch(() => locks.delete(key));
  }
  return locked;
}

async function lockFlakeNow(ref: string): Promise<string> {
  const json = await runNix("nix", [...FEATURES, "flake", "metadata", "--json", ref], "system.flake",
    "fix the error above: system.flake must name a flake Nix can fetch");
  const locked = lockedUrl(JSON.parse(json) as FlakeMetadata);
  if (!locked) {
    throw new NixosPulumiError(`nix flake metadata gave no locked reference for ${ref}`, {
      step: "system.flake",
      hint: "give system.flake as a local path or a git/github reference that Nix can lock (it needs a rev or a NAR hash to evaluate purely)",
    });
  }
  return locked;
}

/** `pick` applied to nixosConfigurations.<name> extended with `specialArgs`, as JSON. */
async function evaluateExtended(flake: string, specialArgs: Record<string, unknown>, expression: string): Promise<string> {
  const hash = flake.lastIndexOf("#");
  const name = flake.slice(hash + 1);
  const locked = await lockFlake(flake.slice(0, hash));
  // --read-write-mode: evaluating drvPath writes the .drv, ready for nix-store --realise.
  const result = await runProcess("nix-instantiate", [
    ...FEATURES, "--option", "pure-eval", "true", "--eval", "--strict", "--json", "--read-write-mode",
    "--expr", expression, "--argstr", "flake", locked, "--argstr", "name", name, "--argstr", "specialArgs", JSON.stringify(specialArgs),
  ]);
  if (result.exitCode !== 0) {
    // Not the command line: it is this file's fixed expression, which says nothing to the user.
    throw new NixosPulumiError(`evaluating nixosConfigurations.${name} of ${locked}, extended with system.specialArgs, failed (nix-instantiate exit ${result.exitCode ?? result.signal})`, {
      step: "system.flake",
      output: result.stderr.trim().split("\n").slice(-30).join("\n"),
      hint: `fix the evaluation error above, or check that nixosConfigurations.${name} exists in the flake and takes the specialArgs it is given`,
    });
  }
  return result.stdout.trim();
}

/** The toplevel and .drv of nixosConfigurations.<name> extended with `specialArgs`. */
export async function evaluateWithSpecialArgs(flake: string, specialArgs: Record<string, unknown>): Promise<Required<Evaluation>> {
  const { out, drv } = JSON.parse(await evaluateExtended(flake, specialArgs, TOPLEVEL)) as { out: string; drv: string };
  return { toplevel: out, derivation: drv };
}

/** `pick` (fixed Nix code: a function of the configuration) of the extended configuration, as JSON. */
export async function extendedConfigurationJson(flake: string, specialArgs: Record<string, unknown>, pick: string): Promise<unknown> {
  return JSON.parse(await evaluateExtended(flake, specialArgs, extended(pick)));
}
