// The copy's progress lines: a copy whose last line already showed it complete is not
// reported a second time by `finish`.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { copyProgress } from "../../provider/copy/progress";
import type { PathInfo } from "../../provider/nix/closure";

const paths: PathInfo[] = [
  { path: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a", narSize: 100, narHash: "0".repeat(64), references: [], deriver: "", registrationTime: 0, ultimate: false, sigs: [], ca: "" },
];

test("finish does not repeat a line that already showed the copy complete", () => {
  const lines: string[] = [];
  const p = copyProgress(paths, Date.now(), (l) => lines.push(l));
  p.registered(1);
  p.narBytes(0)(100);
  p.finish();
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0]!, /^copy: 1\/1 paths/);
});

test("finish reports the end when the last line showed less", () => {
  const lines: string[] = [];
  const p = copyProgress(paths, Date.now(), (l) => lines.push(l));
  p.narBytes(0)(10);
  p.finish();
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[1]!, /^copy: 1\/1 paths/);
});
