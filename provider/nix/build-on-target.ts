// Building on the target: copy the derivation closure (the .drv files and sources, not the
// outputs), then `nix-store --realise` there. The target builds or substitutes what it lacks.
import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import type { SystemSpec } from "../schema/nixos-host";
import { shellQuote, tail, type SshSession } from "../ssh";
import { copyClosure } from "./copy";
import { derivationOf } from "./toplevel";

export async function buildOnTarget(session: SshSession, system: SystemSpec, toplevel: string, progress?: Progress): Promise<void> {
  const drv = await derivationOf(system);
  if (!drv) {
    // A prebuilt store path: nothing to build, it is copied as is.
    await copyClosure(session, toplevel, progress ? { progress } : {});
    return;
  }
  progress?.(`build on target: copying ${drv} and its inputs' derivations`);
  await copyClosure(session, drv, progress ? { progress } : {});
  progress?.("build on target: nix-store --realise");
  const result = await session.exec(`nix-store --realise ${shellQuote(drv)}`, {
    onStderr: (chunk) => chunk.toString().split("\n").filter(Boolean).forEach((l) => progress?.(`build on target: ${l}`)),
  });
  const out = result.stdout.trim().split("\n").pop();
  if (result.code !== 0 || out !== toplevel) {
    throw new NixosPulumiError(`building ${drv} on the target failed${out && out !== toplevel ? ` (it produced ${out})` : ""}`, {
      step: "build",
      host: session.target,
      output: tail(result.stderr),
      hint: "check the build log above; set build.on to \"local\" to build on this machine instead",
    });
  }
}
