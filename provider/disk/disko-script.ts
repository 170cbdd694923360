// A layout given as the user's own disko script (nixos-anywhere's `--store-paths` contract: an
// executable that destroys, formats and mounts the disks under /mnt). It is hashed by its
// store path, found by evaluation without building, so a changed layout in the flake previews
// as a reinstall; the install copies its closure to the target and runs it.
import { execa } from "execa";
import { z } from "zod";
import { NixosPulumiError } from "../errors";
import { NIX_FEATURES } from "../nix/toplevel";
import { canonicalJson, sha256Hex } from "../util/canonical-json";
import { emptyNixos } from "./node";
import type { RenderedLayout } from "./render";

const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+$/;

export const diskoScriptSchema = z.union(
  [
    z.object({ flake: z.string().regex(/^[^#]+#[A-Za-z0-9_.'-]+$/, { message: 'give "<flake>#<name>": its nixosConfigurations.<name>.config.system.build.diskoScript is used' }) }).strict(),
    z.object({ storePath: z.string().regex(STORE_PATH, { message: "give the disko script's store path, e.g. the output of nix build .#nixosConfigurations.web1.config.system.build.diskoScript" }) }).strict(),
  ],
  { error: () => 'diskoScript is { flake: ".#web1" } or { storePath: "/nix/store/…-disko" }' },
);
export type DiskoScriptSpec = z.output<typeof diskoScriptSchema>;

export interface DiskoScriptRef {
  storePath: string;
  /** The .drv to realise before copying (flake scripts are evaluated, not built, in preview). */
  derivation?: string | undefined;
}

export async function evalDiskoScript(spec: DiskoScriptSpec): Promise<DiskoScriptRef> {
  if ("storePath" in spec) return { storePath: spec.storePath };
  const hash = spec.flake.lastIndexOf("#");
  const attr = `${spec.flake.slice(0, hash)}#nixosConfigurations.${JSON.stringify(spec.flake.slice(hash + 1))}.config.system.build.diskoScript`;
  const r = await execa("nix", [...NIX_FEATURES, "eval", "--json", attr, "--apply", "d: { out = d.outPath; drv = d.drvPath; }"], { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0) {
    throw new NixosPulumiError(`cannot evaluate ${attr}`, {
      step: "diskoScript",
      output: String(r.stderr).trim().split("\n").slice(-15).join("\n"),
      hint: "the flake's system must import disko's NixOS module (disko.nixosModules.disko) with its disko.devices",
    });
  }
  const { out, drv } = JSON.parse(String(r.stdout)) as { out: string; drv: string };
  return { storePath: out, derivation: drv };
}

/** The layout as far as the provider sees it: the script, its hash; no resume, no NixOS config (the system's disko module has it). */
export function renderDiskoScript(ref: DiskoScriptRef): RenderedLayout {
  const hash = sha256Hex(canonicalJson({ diskoScript: ref.storePath }));
  return {
    spec: { disk: {} },
    hash,
    formatHash: hash,
    mountHash: sha256Hex("diskoScript"),
    diskoNix: "",
    script: `#!/bin/sh\n# The system's disko script: destroys, formats and mounts its disks under /mnt.\nexec ${ref.storePath}\n`,
    // disko's script destroys what it finds itself; an interrupted install runs it again.
    mountScript: "#!/bin/sh\nexit 1\n",
    releaseScript: "#!/bin/sh\ntrue\n",
    fileSystems: {},
    swapDevices: [],
    nixos: emptyNixos(),
    nixosModule: "",
    // disko's script brings its nodes' packages in its own closure (`_pkgs`).
    tools: [],
    optionalTools: [],
    diskoScript: ref,
  };
}
