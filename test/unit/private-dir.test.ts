// np_private_dir (the guard every run directory and upload goes through), run by sh on this
// machine in a scratch directory: a root-owned directory with another mode is made 0700, one
// already 0700 is left untouched (no chmod: its ctime stays), anything else is refused.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { PATH_GUARDS } from "../../provider/ssh/private-paths";

const scratch = mkdtempSync(path.join(os.tmpdir(), "np-private-dir-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const privateDir = (dir: string) => execa("sh", ["-c", `${PATH_GUARDS}\nnp_private_dir "$1"`, "sh", dir], { reject: false });

test("a root-owned run directory with another mode is made 0700", async () => {
  const dir = path.join(scratch, "open");
  mkdirSync(dir, { mode: 0o755 });
  const r = await privateDir(dir);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
});

test("a run directory already 0700 is not changed (no chmod runs: its ctime stays)", async () => {
  const dir = path.join(scratch, "private");
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  const before = statSync(dir, { bigint: true }).ctimeNs;
  await new Promise((r) => setTimeout(r, 20));
  const r = await privateDir(dir);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(statSync(dir, { bigint: true }).ctimeNs, before);
});

test("a run directory owned by another account is refused, and left as it is", async () => {
  const dir = path.join(scratch, "foreign");
  mkdirSync(dir, { mode: 0o755 });
  chownSync(dir, 65534, 65534);
  const r = await privateDir(dir);
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /is owned by uid 65534, not root/);
  assert.equal(statSync(dir).mode & 0o777, 0o755);
});
