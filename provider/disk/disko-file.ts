import { execa } from "execa";
import * as path from "node:path";
import { NixosPulumiError } from "../errors";
import { shippedFile } from "../util/shipped-file";

const LIB = shippedFile("disk/disko-lib.nix");

/**
 * Evaluates an existing disko .nix file (a module, or a function of { lib, ... } as disko
 * calls it) to its devices, with a `lib` that provides what layouts commonly call.
 */
export async function readDiskoFile(file: string): Promise<unknown> {
  const absolute = path.resolve(file);
  const expr = [
    `let lib = import ${JSON.stringify(LIB)};`,
    `  r = lib.resolveDefinitions;`,
    `  f = import ${JSON.stringify(absolute)};`,
    `  given = { inherit lib; config = { }; options = { }; pkgs = { }; modulesPath = "/modules"; };`,
    // A function without "..." refuses arguments it does not name: give only those it names.
    `  call = f: let formals = builtins.functionArgs f; in f (if formals == { } then given else builtins.intersectAttrs formals given);`,
    `  m = r (if builtins.isFunction f then call f else f);`,
    `  disko = r (m.disko or (throw "the file sets no disko.devices"));`,
    `in r (disko.devices or (throw "the file sets no disko.devices"))`,
  ].join("\n");
  const result = await execa("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr], { reject: false });
  if (result.exitCode !== 0) {
    throw new NixosPulumiError(`cannot evaluate ${file} as a disko layout`, {
      step: "diskoFile",
      output: String(result.stderr).trim().split("\n").slice(-15).join("\n"),
      hint: "diskoFile must evaluate without nixpkgs to { disko.devices = { disk = …; }; } (a function of { lib, ... } is fine: lib offers mkDefault, mkForce, mkIf, mkMerge, optionalAttrs, genAttrs and the common attrset, list and string functions)",
    });
  }
  return JSON.parse(String(result.stdout));
}
