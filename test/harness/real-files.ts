// Closures of real files (binaries, libraries, text copied from this machine) for copy tests
// and benchmarks where compression matters: random filler never compresses, real systems do.
import { copyFileSync, lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";

const SOURCES = ["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/share/perl", "/usr/share/doc", "/usr/share/man"];
const NIX_FILE = path.resolve(__dirname, "../../../test/fixtures/real-files.nix");

function* regularFiles(dir: string): Generator<{ file: string; size: number }> {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const name of entries) {
    const file = path.join(dir, name);
    const st = lstatSync(file, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) yield* regularFiles(file);
    else if (st.isFile() && st.size > 0) yield { file, size: st.size };
  }
}

/** Builds a closure of `parts` store paths holding about `totalBytes` of this machine's files. */
export async function buildRealFilesClosure(label: string, totalBytes: number, parts: number): Promise<string> {
  const work = path.join(os.tmpdir(), `real-files-${label}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const dirs = Array.from({ length: parts }, (_, i) => path.join(work, `${label}-${i}`));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  let total = 0;
  let n = 0;
  outer: for (const source of SOURCES) {
    for (const { file, size } of regularFiles(source)) {
      if (size > 16 * 1024 * 1024) continue;
      copyFileSync(file, path.join(dirs[n % parts]!, `${n}-${path.basename(file)}`));
      n++;
      total += size;
      if (total >= totalBytes) break outer;
    }
  }
  try {
    const { stdout } = await execa("nix-build", ["--no-out-link", NIX_FILE, "--argstr", "label", label, "--arg", "dirs", `[ ${dirs.join(" ")} ]`]);
    return stdout.trim().split("\n").pop()!;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
