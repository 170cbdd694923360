import { runNix } from "./run-nix";

export interface ClosurePath {
  path: string;
  narSize: number;
}

/** The closure of a store path, dependencies first, with each path's NAR size. */
export async function closureOf(storePath: string): Promise<ClosurePath[]> {
  const hint = "the path must be built in the local store first";
  const paths = (await runNix("nix-store", ["--query", "--requisites", storePath], "closure", hint)).split("\n").filter(Boolean);
  const sizes = (await runNix("nix-store", ["--query", "--size", ...paths], "closure", hint)).split("\n");
  return paths.map((path, i) => ({ path, narSize: Number(sizes[i] ?? 0) }));
}
