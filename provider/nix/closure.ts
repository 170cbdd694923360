// The closure of a store path with what a target's store needs to register each path,
// from one `nix path-info` per toplevel (remembered: a store path's closure never changes).
import { runNix } from "./run-nix";
import { NIX_FEATURES } from "./toplevel";
import { narHashHex } from "./nar-hash";

export interface ClosurePath {
  path: string;
  narSize: number;
}

/** A closure path with what a store needs to register it (the serve protocol's path info). */
export interface PathInfo extends ClosurePath {
  /** SHA-256 of the path's NAR, hex. */
  narHash: string;
  references: string[];
  deriver: string;
  registrationTime: number;
  ultimate: boolean;
  sigs: string[];
  ca: string;
}

interface PathInfoJson {
  path?: string;
  narHash: string;
  narSize: number;
  references?: string[];
  deriver?: string | null;
  registrationTime?: number | null;
  ultimate?: boolean;
  signatures?: string[];
  ca?: string | null;
}

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
  const out = await runNix("nix", [...NIX_FEATURES, "path-info", "--json", "--recursive", ...derivation, storePath], "closure", "the path must be built in the local store first");
  const parsed = JSON.parse(out) as PathInfoJson[] | Record<string, PathInfoJson>;
  // Nix < 2.19 prints a list of objects with "path"; later ones an object keyed by path.
  const entries = Array.isArray(parsed) ? parsed.map((i) => [i.path!, i] as const) : Object.entries(parsed);
  const byPath = new Map<string, PathInfo>();
  for (const [path, info] of entries) {
    const storeDir = path.slice(0, path.lastIndexOf("/") + 1);
    const full = (p: string) => (p.startsWith("/") ? p : storeDir + p);
    byPath.set(path, {
      path,
      narSize: info.narSize,
      narHash: narHashHex(info.narHash),
      references: (info.references ?? []).map(full),
      deriver: info.deriver ? full(info.deriver) : "",
      registrationTime: info.registrationTime ?? 0,
      ultimate: info.ultimate ?? false,
      sigs: info.signatures ?? [],
      ca: info.ca ?? "",
    });
  }
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
