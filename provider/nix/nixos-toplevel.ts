import { existsSync } from "node:fs";
import { NixosPulumiError } from "../errors";
import { shellQuote, type SshSession } from "../ssh";

/**
 * What every NixOS toplevel holds (nixpkgs nixos/modules/system/activation/top-level.nix:
 * `init` and `nixos-version` always; activatable-system.nix: `bin/switch-to-configuration`,
 * which the switch and nixos-install run). A store path without them is some other package.
 */
export const NIXOS_TOPLEVEL_ENTRIES = ["bin/switch-to-configuration", "init", "nixos-version"] as const;

/**
 * Refuses a store path in this machine's store that is not a NixOS system, before it is
 * copied anywhere or set as a system profile (where it would leave a generation that
 * cannot activate).
 */
export function refuseNonNixosToplevel(path: string, field: string): void {
  refuseMissing(path, NIXOS_TOPLEVEL_ENTRIES.filter((entry) => !existsSync(`${path}/${entry}`)), field);
}

/**
 * The same for a system realised on the target (build.on "target"), under `root` ("/mnt"
 * for an install), before its profile is set.
 */
export async function refuseNonNixosToplevelOnTarget(session: SshSession, path: string, field: string, root = ""): Promise<void> {
  const checks = NIXOS_TOPLEVEL_ENTRIES.map((entry) => `[ -e ${shellQuote(`${root}${path}/${entry}`)} ] || echo ${shellQuote(entry)}`);
  const { stdout } = await session.exec(checks.join("; "));
  refuseMissing(path, stdout.split("\n").filter(Boolean), field);
}

/** The name of the system input a spec uses, for errors. */
export function systemField(system: object): string {
  return "flake" in system ? "system.flake" : "expression" in system ? "system.expression" : "system.storePath";
}

function refuseMissing(path: string, missing: string[], field: string): void {
  if (missing.length === 0) return;
  throw new NixosPulumiError(`${path} is not a NixOS system: it has no ${missing.join(", ")}`, {
    step: field,
    hint:
      field === "system.storePath"
        ? "give the store path of a NixOS toplevel (config.system.build.toplevel, e.g. nix build .#nixosConfigurations.<name>.config.system.build.toplevel), not a package"
        : `${field} must select a NixOS toplevel (config.system.build.toplevel), not a package`,
  });
}
