// The closure of a store path with what a target's store needs to register each path,
// from one `nix path-info` per toplevel (remembered: a store path's closure never changes).
import { NixosPulumiError } from "../errors";
import { runNix } from "./run-nix";
import { NIX_FEATURES } from "./toplevel";
import { localNixVersion } from "./nix-version";
import { parsePathInfoJson, pathInfoJsonArgs, type PathInfo } from "./path-info-json";

export type { ClosurePath, PathInfo } from "./path-info-json";

const known = new Map<string, Promise<PathInfo[]>>();

/** The closure of a store path, dependencies before the paths that refer to them. */
export function closureOf(storePath: string): Promise<PathInfo[]> {
  let result = known.get(storePath);
  if (!result) {
    result = queryClosure(storePath);
    known.set(storePath, result);
    result.catch(() => known.delete(storePath));
  }
  return result;
}

async function queryClosure(storePath: string): Promise<PathInfo[]> {
  // A .drv given as an installable means its outputs (built first): ask for the file itself.
  const derivation = storePath.endsWith(".drv") ? ["--derivation"] : [];
  const json = pathInfoJsonArgs(await localNixVersion());
  const out = await runNix("nix", [...NIX_FEATURES, "path-info", ...json, "--recursive", ...derivation, storePath], "closure", "the path must be built in the local store first");
  const byPath = new Map<string, PathInfo>();
  let infos: PathInfo[];
  try {
    infos = parsePathInfoJson(out);
  } catch (err) {
    throw new NixosPulumiError(`cannot read \`nix path-info\` of ${storePath}: ${(err as Error).message}`, {
      step: "closure",
      hint: "the provider reads the path-info JSON of Nix 2.8 to 2.34 (formats 1 and 2); put such a Nix first in PATH for pulumi, and report your `nix --version`",
    });
  }
  for (const info of infos) byPath.set(info.path, info);
  return dependenciesFirst(byPath);
}

/** A target's store registers a path only once its references are valid there. */
function dependenciesFirst(byPath: Map<string, PathInfo>): PathInfo[] {
  const ordered: PathInfo[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (path: string) => {
    if (state.get(path)) return;
    state.set(path, "visiting");
    const info = byPath.get(path)!;
    for (const ref of info.references) if (ref !== path && byPath.has(ref)) visit(ref);
    state.set(path, "done");
    ordered.push(info);
  };
  for (const path of [...byPath.keys()].sort()) visit(path);
  return ordered;
}
