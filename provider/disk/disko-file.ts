import { execa } from "execa";
import * as path from "node:path";
import { NixosPulumiError } from "../errors";

/** Evaluates an existing disko .nix file (a module or a function of { lib, ... }) to its devices. */
export async function readDiskoFile(file: string): Promise<unknown> {
  const absolute = path.resolve(file);
  const expr = `let f = import ${JSON.stringify(absolute)}; m = if builtins.isFunction f then f { lib = { }; config = { }; pkgs = { }; } else f; in m.disko.devices`;
  const result = await execa("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr], { reject: false });
  if (result.exitCode !== 0) {
    throw new NixosPulumiError(`cannot evaluate ${file} as a disko layout`, {
      step: "diskoFile",
      output: String(result.stderr).trim().split("\n").slice(-15).join("\n"),
      hint: "diskoFile must evaluate without nixpkgs to { disko.devices = { disk = …; }; } (a function of { ... } is fine)",
    });
  }
  return JSON.parse(String(result.stdout));
}
