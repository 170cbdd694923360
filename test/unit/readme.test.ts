// Every code block of the README is checked: TypeScript blocks type-check against the
// package, shell blocks parse and name only scripts and commands that exist; the blocks of
// "Use it in your project" and "Install" run word for word in test/e2e/readme-quickstart.test.ts.
// Text blocks are output samples, checked against real output or labelled abridged in
// test/unit/readme-samples.test.ts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { README, readmeBlocks } from "../harness/readme";

const ROOT = path.dirname(README);
const blocks = readmeBlocks();

test("every README code block says what it is", () => {
  for (const b of blocks) assert.ok(["ts", "sh", "nix", "text"].includes(b.lang), `README.md:${b.line}: a block of kind "${b.lang}"`);
  assert.ok(blocks.filter((b) => b.lang === "ts").length >= 3);
});

test("every Nix block of the README parses", async () => {
  for (const b of blocks.filter((x) => x.lang === "nix")) {
    const parsed = await execa("nix-instantiate", ["--parse", "-E", b.body], { reject: false });
    assert.equal(parsed.exitCode, 0, `README.md:${b.line}: ${parsed.stderr}`);
  }
});

test("the README links no file outside the repository", () => {
  const text = readFileSync(README, "utf8");
  assert.deepEqual(text.match(/\]\((\.\.\/|\/)[^)]*\)/g) ?? [], []);
});

test("every TypeScript block of the README type-checks against the package", { timeout: 300_000 }, async () => {
  mkdirSync(path.join(ROOT, "test", ".work"), { recursive: true });
  const dir = mkdtempSync(path.join(ROOT, "test", ".work", "readme-"));
  try {
    const ts = blocks.filter((b) => b.lang === "ts");
    ts.forEach((b, i) => writeFileSync(path.join(dir, `block-${i}-line-${b.line}.ts`), b.body));
    writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({
      extends: "../../../tsconfig.json",
      compilerOptions: { noEmit: true, rootDir: "../../..", paths: { "nixos-pulumi": ["../../../provider/index.ts"] } },
      include: ["*.ts"],
      exclude: [],
    }));
    const result = await execa(path.join(ROOT, "node_modules", ".bin", "tsc"), ["-p", dir], { cwd: ROOT, reject: false });
    assert.equal(result.exitCode, 0, `README blocks do not type-check:\n${result.stdout}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every shell block of the README parses and runs only scripts and commands that exist", async () => {
  const scripts = Object.keys((JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts);
  for (const b of blocks.filter((x) => x.lang === "sh")) {
    const parsed = await execa("bash", ["-n"], { input: b.body, reject: false });
    assert.equal(parsed.exitCode, 0, `README.md:${b.line}: ${parsed.stderr}`);
    for (const m of b.body.matchAll(/\bnpm (?:run )?(\w[\w:-]*)/g)) {
      const name = m[1]!;
      if (["init", "install", "pack", "ci"].includes(name)) continue;
      assert.ok(scripts.includes(name), `README.md:${b.line}: npm script "${name}" does not exist`);
    }
    for (const line of b.body.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#") && !/^(EOF|name:|runtime:|main:)/.test(l))) {
      const word = line.split(/\s+/)[0]!;
      const found = await execa("bash", ["-c", `command -v ${word}`], { reject: false, env: { PATH: `${path.join(ROOT, "node_modules", ".bin")}:${process.env["PATH"]}` } });
      assert.equal(found.exitCode, 0, `README.md:${b.line}: command "${word}" not found`);
    }
  }
});
