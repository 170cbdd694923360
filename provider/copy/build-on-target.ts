// Building on the target: copy the derivation closure (the .drv files and sources, not the
// outputs), then `nix-store --realise` there. The target builds or substitutes what it lacks.
// During an install the store is /mnt's (`--store /mnt`, as nixos-install builds and
// nixos-anywhere's `remote-store=local?root=/mnt`): the system goes straight onto the new
// disk, never through the installer's RAM store.
import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import type { SystemSpec } from "../schema/nixos-host";
import { shellQuote, tail, type SshSession } from "../ssh";
import { copyClosure } from "./copy";
import { storeFlag } from "./stream";
import { derivationOf } from "../nix/toplevel";

/** `storeRoot`: build into the store under this root (e.g. "/mnt" during an install). */
export async function buildOnTarget(session: SshSession, system: SystemSpec, toplevel: string, progress?: Progress, storeRoot?: string): Promise<void> {
  const drv = await derivationOf(system);
  if (!drv) {
    // A prebuilt store path: nothing to build, it is copied as is.
    await copyClosure(session, toplevel, { ...(progress ? { progress } : {}), ...(storeRoot ? { storeRoot } : {}) });
    return;
  }
  await realiseOnTarget(session, drv, toplevel, { progress, storeRoot, step: "build on target" });
}

export interface RealiseOptions {
  progress?: Progress | undefined;
  storeRoot?: string | undefined;
  /** The progress prefix and the error's step. */
  step: string;
}

/** Copies `drv`'s derivation closure to the target and realises it there; it must produce `out`. */
export async function realiseOnTarget(session: SshSession, drv: string, out: string, options: RealiseOptions): Promise<void> {
  const { progress, storeRoot, step } = options;
  const where = storeRoot ? ` into ${storeRoot}'s store` : "";
  progress?.(`${step}: copying ${drv} and its inputs' derivations${where}`);
  await copyClosure(session, drv, { ...(progress ? { progress } : {}), ...(storeRoot ? { storeRoot } : {}) });
  progress?.(`${step}: nix-store${storeFlag(storeRoot)} --realise`);
  const result = await session.exec(`nix-store${storeFlag(storeRoot)} --realise ${shellQuote(drv)}`, {
    onStderr: (chunk) => chunk.toString().split("\n").filter(Boolean).forEach((l) => progress?.(`${step}: ${l}`)),
  });
  const produced = result.stdout.trim().split("\n").pop();
  if (result.code !== 0 || produced !== out) {
    throw new NixosPulumiError(`building ${drv} on the target${where} failed${produced && produced !== out ? ` (it produced ${produced})` : ""}`, {
      step: "build",
      host: session.target,
      output: tail(result.stderr),
      hint: "check the build log above; set build.on to \"local\" to build on this machine instead",
    });
  }
}
