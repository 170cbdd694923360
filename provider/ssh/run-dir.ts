// A run's private directory on the target (root, 0700, under /run/nixos-pulumi).
import { NixosPulumiError } from "../errors";
import { shellQuote } from "../util/shell-quote";
import { newRunDirCommand, PRIVATE_ROOT, REFUSED_EXIT } from "./private-paths";
import { tail, type SshSession } from "./session";

/** Creates a new run directory for `purpose` (removing leftovers of earlier runs) and returns its path. */
export async function newRunDir(session: SshSession, purpose: "install" | "switch"): Promise<string> {
  const result = await session.exec(newRunDirCommand(purpose));
  const dir = result.stdout.trim();
  if (result.code !== 0 || !dir.startsWith(`${PRIVATE_ROOT}/${purpose}.`)) {
    throw new NixosPulumiError(`could not create a private run directory in ${PRIVATE_ROOT} (exit ${result.code ?? result.signal})`, {
      step: purpose,
      host: session.target,
      output: tail(result.stderr),
      ...(result.code === REFUSED_EXIT ? { hint: `${PRIVATE_ROOT} must be a directory owned by root that no other account can write; remove it (it is recreated) if something else made it` } : {}),
    });
  }
  return dir;
}

export async function removeRunDir(session: SshSession, dir: string): Promise<void> {
  await session.execOk(`rm -rf ${shellQuote(dir)}`, "cleanup");
}
