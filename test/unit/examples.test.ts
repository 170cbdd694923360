// The example projects type-check against the real provider packages from npm (@pulumi/hcloud,
// @pulumi/aws, @pulumi/command, installed in examples/ only) and nixos-pulumi's declarations.
// A deliberately wrong program is checked in the same run, so the check cannot pass vacuously.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { execa } from "execa";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const EXAMPLES = path.join(ROOT, "examples");
const PROJECTS = ["hetzner", "aws-bastion", "adopt", "flake-fleet"];

async function installExamples(): Promise<void> {
  const stamp = path.join(EXAMPLES, "node_modules", ".lock.sha256");
  const want = createHash("sha256").update(readFileSync(path.join(EXAMPLES, "package-lock.json"))).digest("hex");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === want) return;
  await execa("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: EXAMPLES });
  writeFileSync(stamp, want);
}

test("every example is a complete Pulumi project that type-checks against the real provider packages", { timeout: 600_000 }, async () => {
  for (const p of PROJECTS) {
    for (const f of ["Pulumi.yaml", "package.json", "index.ts"]) assert.ok(existsSync(path.join(EXAMPLES, p, f)), `${p}/${f}`);
  }
  await installExamples();
  for (const pkg of ["@pulumi/hcloud", "@pulumi/aws", "@pulumi/command"]) {
    assert.ok(existsSync(path.join(EXAMPLES, "node_modules", pkg, "package.json")), `${pkg} installed in examples/`);
  }
  const dir = mkdtempSync(path.join(EXAMPLES, ".typecheck-"));
  try {
    writeFileSync(path.join(dir, "wrong.ts"), [
      'import { NixosHost } from "nixos-pulumi";',
      'new NixosHost("x", { connection: { host: "h" }, system: { flake: ".#x" }, swich: { action: "boot" } });',
      "",
    ].join("\n"));
    writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ extends: "../tsconfig.json", include: [...PROJECTS.map((p) => `../${p}/*.ts`), "wrong.ts"] }));
    const result = await execa(path.join(ROOT, "node_modules", ".bin", "tsc"), ["-p", dir], { cwd: EXAMPLES, reject: false });
    const errors = result.stdout.split("\n").filter((l) => /error TS/.test(l));
    assert.ok(errors.length > 0 && errors.every((l) => l.includes("wrong.ts")), `only the wrong program fails:\n${result.stdout}`);
    assert.match(errors.join("\n"), /'swich' does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
