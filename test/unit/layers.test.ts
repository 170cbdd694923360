// The provider's folders form layers: each imports only the folders below it (and the
// top-level errors/progress modules), so no concern reaches up into the one that uses it.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";

const provider = path.resolve(__dirname, "../../../provider");
/** Top to bottom: a folder may import any folder after it. */
const LAYERS = ["resources", "host", "install", "switch", "disk", "copy", "nix", "ssh", "schema", "util"];

test("no provider folder imports a folder above it, and every folder has its place in the layers", () => {
  const folders = readdirSync(provider, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  assert.deepEqual(folders.filter((f) => !LAYERS.includes(f)), [], "a new folder needs its place in LAYERS");
  const upward: string[] = [];
  for (const folder of folders) {
    for (const file of readdirSync(path.join(provider, folder)).filter((f) => f.endsWith(".ts"))) {
      const source = readFileSync(path.join(provider, folder, file), "utf8");
      for (const [, target] of source.matchAll(/(?:from |require\()"\.\.\/([a-z-]+)[/"]/g)) {
        if (!LAYERS.includes(target!)) continue; // errors.ts, progress.ts
        if (LAYERS.indexOf(target!) <= LAYERS.indexOf(folder)) upward.push(`${folder}/${file} imports ${target}/`);
      }
    }
  }
  assert.deepEqual(upward, []);
});
