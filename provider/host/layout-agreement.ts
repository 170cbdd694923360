// Preview-time check that the NixOS system mounts what the DiskLayout creates: a system whose
// fileSystems disagree with its layout installs fine and then does not boot.
import { execa } from "execa";
import * as nodePath from "node:path";
import { NixosPulumiError } from "../errors";
import type { FileSystemConfig } from "../disk/node";
import { NIX_FEATURES } from "../nix/toplevel";
import { extendedConfigurationJson } from "../nix/flake-special-args";
import type { SystemSpec } from "../schema/nixos-host";

type FileSystems = Record<string, FileSystemConfig>;

const PICK = `fs: builtins.mapAttrs (_: v: { device = v.device or null; fsType = v.fsType or null; options = v.options or [ ]; }) fs`;

/**
 * The system's `config.fileSystems` when it can be evaluated as a NixOS configuration: a
 * flake's nixosConfigurations.<name>, or an expression whose value (or an attribute set on
 * the way to `attr`) exposes `config.fileSystems`. Undefined when it is not one; an
 * evaluation that fails is the system's error and is thrown, never taken for "not NixOS".
 */
export async function systemFileSystems(system: SystemSpec): Promise<FileSystems | undefined> {
  if ("flake" in system && system.specialArgs !== undefined) {
    // The configuration the toplevel came from: extended with the program's values.
    return (await extendedConfigurationJson(system.flake, system.specialArgs, `c: (${PICK}) c.config.fileSystems`)) as FileSystems;
  }
  if ("flake" in system) {
    const hash = system.flake.lastIndexOf("#");
    const attr = `${system.flake.slice(0, hash)}#nixosConfigurations.${JSON.stringify(system.flake.slice(hash + 1))}.config.fileSystems`;
    // nixosConfigurations.<name> exists (the toplevel evaluated): any failure here is the system's own.
    const r = await execa("nix", [...NIX_FEATURES, "eval", "--json", attr, "--apply", PICK], { reject: false, stdin: "ignore" });
    if (r.exitCode !== 0) throw evaluationFailed(`nix eval ${attr}`, String(r.stderr));
    return JSON.parse(String(r.stdout)) as FileSystems;
  }
  if ("expression" in system) {
    const { file, attr, args } = system.expression;
    const path = (attr ?? "").split(".").filter(Boolean);
    // The value at attr, then each attribute set on the way to it, then the file's value.
    const prefixes = path.map((_, i) => path.slice(0, path.length - i)).concat([[]]);
    const expr = [
      `let args = { ${Object.entries(args ?? {}).map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v).replace(/\$\{/g, "\\${")};`).join(" ")} };`,
      `  f = import ${JSON.stringify(nodePath.resolve(file))};`,
      `  v = if builtins.isFunction f then f args else f;`,
      `  get = p: builtins.foldl' (acc: k: if builtins.isAttrs acc && acc ? \${k} then acc.\${k} else null) v p;`,
      `  has = s: builtins.isAttrs s && s ? config && builtins.isAttrs s.config && s.config ? fileSystems;`,
      `  found = builtins.filter has (map get ${JSON.stringify(prefixes).replace(/,/g, " ")});`,
      `in if found == [ ] then null else (${PICK}) (builtins.head found).config.fileSystems`,
    ].join("\n");
    const argv = ["--eval", "--strict", "--json", "-E", expr];
    // "Not a NixOS configuration" is the expression's null, never a failed evaluation.
    const r = await execa("nix-instantiate", argv, { reject: false, stdin: "ignore" });
    if (r.exitCode !== 0) throw evaluationFailed(`the fileSystems of ${file}${attr ? ` (attr ${attr})` : ""}`, String(r.stderr));
    return (JSON.parse(String(r.stdout)) as FileSystems | null) ?? undefined;
  }
  return undefined;
}

function evaluationFailed(what: string, stderr: string): NixosPulumiError {
  return new NixosPulumiError(`could not evaluate ${what} to check them against the diskLayout`, {
    step: "check",
    output: stderr.trim().split("\n").slice(-20).join("\n"),
    hint: "fix the evaluation error above in the system's configuration (its fileSystems must evaluate, as they must for the install)",
  });
}

function show(fs: FileSystemConfig | undefined): string {
  if (!fs) return "(not declared)";
  return `{ device = ${JSON.stringify(fs.device)}; fsType = ${JSON.stringify(fs.fsType)}; options = [ ${fs.options.map((o) => JSON.stringify(o)).join(" ")} ]; }`;
}

const sameOptions = (a: string[], b: string[]) => [...a].sort().join(",") === [...b].sort().join(",");

/** Every mountpoint the layout creates, as the system declares it; and no layout device mounted elsewhere. */
export function layoutDisagreements(layout: FileSystems, system: FileSystems): string[] {
  const issues: string[] = [];
  for (const [mp, want] of Object.entries(layout)) {
    const have = system[mp];
    if (!have || have.device !== want.device || have.fsType !== want.fsType || !sameOptions(have.options ?? [], want.options)) {
      issues.push(`${mp}:\n    layout ${show(want)}\n    system ${show(have)}`);
    }
  }
  const layoutDevices = new Set(Object.values(layout).map((f) => f.device));
  for (const [mp, have] of Object.entries(system)) {
    if (!layout[mp] && layoutDevices.has(have.device) && have.fsType !== "btrfs") {
      issues.push(`${mp}:\n    layout (not declared)\n    system ${show(have)}`);
    }
  }
  return issues;
}

export async function checkSystemAgreesWithLayout(system: SystemSpec, layout: FileSystems): Promise<void> {
  const declared = await systemFileSystems(system);
  if (!declared) return;
  const issues = layoutDisagreements(layout, declared);
  if (issues.length === 0) return;
  throw new NixosPulumiError(`the system's fileSystems do not agree with its diskLayout; the installed machine would not mount them:\n  ${issues.join("\n  ")}`, {
    step: "check",
    hint: "import the DiskLayout's nixosModule output (or disko's module with the same layout) in the system's configuration, or change the layout",
  });
}
