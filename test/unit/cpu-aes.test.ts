// Whether a CPU has AES instructions, read from /proc/cpuinfo the same way on this machine
// (localCpuHasAes) and on a target (TARGET_AES_PROBE, run by the target's shell).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { localCpuHasAes, TARGET_AES_PROBE } from "../../provider/ssh/cpu-aes";

const dir = mkdtempSync(path.join(os.tmpdir(), "cpuinfo-"));
const cases: [string, string, boolean][] = [
  ["x86 with AES-NI", "processor\t: 0\nflags\t\t: fpu sse2 aes avx\n", true],
  ["x86 with only vaes in the list", "flags\t\t: fpu sse2 vaes avx\n", false],
  ["QEMU TCG's qemu64", "flags\t\t: fpu de pse tsc msr pae sse sse2 ht syscall nx lm\n", false],
  ["arm64 with crypto extensions", "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n", true],
  ["arm64 without", "Features\t: fp asimd evtstrm crc32\n", false],
  ["aes last on the line", "flags\t\t: fpu aes\n", true],
  ["aes first after the colon", "flags\t\t:aes fpu\n", true],
  ["aes in a flags line without a colon", "flags aes\n", false],
];

for (const [name, text, expected] of cases) {
  test(`${name}: ${expected ? "has" : "has no"} AES, here and on a target`, () => {
    const file = path.join(dir, name.replace(/\W+/g, "-"));
    writeFileSync(file, text);
    assert.equal(localCpuHasAes(file), expected);
    const probe = TARGET_AES_PROBE.replace("/proc/cpuinfo", file);
    for (const shell of [["sh"], ["bash"], ["busybox", "sh"]]) {
      const printed = execFileSync(shell[0]!, [...shell.slice(1), "-c", `${probe}; true`], { encoding: "utf8" }).trim();
      assert.equal(printed === "+aes", expected, `${shell.join(" ")} printed ${JSON.stringify(printed)}`);
    }
  });
}
