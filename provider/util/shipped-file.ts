// Files the provider reads at run time (target shell scripts, Nix) ship in the package beside
// dist/ (package.json "files"), so they are found from the package's root, which holds the
// same layout in a clone and in an installed tarball.
import { existsSync } from "node:fs";
import * as path from "node:path";

function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`nixos-pulumi: no package.json above ${__dirname}; reinstall the package`);
  }
}

const root = packageRoot();

/** The absolute path of provider/<relative> in this package. */
export function shippedFile(relative: string): string {
  return path.join(root, "provider", relative);
}
