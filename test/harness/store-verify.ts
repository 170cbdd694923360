// Checks a copy left the target's store right: every path of a closure valid there, every
// path's contents matching its registered NAR hash, and no staging files left behind.
import * as assert from "node:assert/strict";
import { execa } from "execa";
import type { TestHost } from "./hosts";

/** Every path of the closure is valid on the target and its contents match its NAR hash. */
export async function assertClosureVerifies(host: TestHost, storePath: string): Promise<void> {
  const { stdout } = await execa("nix-store", ["-qR", storePath]);
  const paths = stdout.split("\n").filter(Boolean);
  const invalid = await host.exec("xargs nix-store --check-validity --print-invalid", paths.join("\n"));
  assert.equal(invalid.code, 0, invalid.stderr);
  assert.equal(invalid.stdout.trim(), "", "paths missing on the target");
  const verify = await host.exec("nix-store --verify --check-contents 2>&1");
  assert.equal(verify.code, 0, verify.stdout);
  assert.doesNotMatch(verify.stdout, /modified|corrupt|invalid|error/i);
  const leftovers = await host.exec("ls -A /nix/var/nixos-pulumi/copy-staging 2>/dev/null");
  assert.equal(leftovers.stdout.trim(), "", "staging files left behind");
}

