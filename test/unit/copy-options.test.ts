// copy.compress is read (not accepted and dropped), bad values name the field, `auto` keeps
// what measurably moved NARs faster with what both ends have, and NAR hashes convert as Nix
// prints them.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseHostInputs } from "../../provider/host/validate";
import { InputError } from "../../provider/errors";
import { chooseCompression } from "../../provider/copy/compression";
import { AutoCompression, GAIN, TRY_BELOW } from "../../provider/copy/auto-compression";
import { narHashHex } from "../../provider/nix/nar-hash";

const MiB = 1024 * 1024;
const inputs = (copy?: unknown) => ({
  connection: { host: "127.0.0.1", password: "x" },
  system: { storePath: "/nix/store/00000000000000000000000000000000-x" },
  ...(copy === undefined ? {} : { copy }),
});

test("copy.compress reaches the spec, auto by default", () => {
  assert.equal(parseHostInputs(inputs()).copy.compress, "auto");
  assert.equal(parseHostInputs(inputs({ compress: "zstd" })).copy.compress, "zstd");
  assert.equal(parseHostInputs(inputs({ compress: "none" })).copy.compress, "none");
});

test("a bad copy.compress is refused naming the field and the choices", () => {
  assert.throws(() => parseHostInputs(inputs({ compress: "xz" })), (err: unknown) => {
    assert.ok(err instanceof InputError);
    assert.match(err.message, /copy\.compress/);
    assert.match(err.message, /"auto".*"zstd".*"gzip".*"none"/);
    return true;
  });
  assert.throws(() => parseHostInputs(inputs({ compres: "zstd" })), /copy/);
});

test("auto would compress with zstd where both ends have it, else the target's gzip, else not at all", () => {
  assert.equal(chooseCompression("auto", new Set(["zstd", "gzip"])), "zstd");
  assert.equal(chooseCompression("auto", new Set(["gzip"])), "gzip");
  assert.equal(chooseCompression("auto", new Set()), "none");
});

test("auto keeps a fast link plain without trying compression", () => {
  const lines: string[] = [];
  const auto = new AutoCompression("zstd", (l) => lines.push(l));
  assert.equal(auto.next(), "none");
  assert.equal(auto.measured(TRY_BELOW + MiB), false, "the plain stream goes on");
  assert.equal(auto.decided, "none");
  assert.deepEqual(lines, ["copy: link measured at 41.0 MiB/s uncompressed; compression: none"]);
});

test("auto keeps compression where a compressed stretch took NARs in faster (a slow link)", () => {
  const auto = new AutoCompression("zstd");
  assert.equal(auto.measured(11 * MiB), true, "the plain stream ends so the next stretch goes compressed");
  assert.equal(auto.next(), "zstd");
  assert.equal(auto.decided, undefined);
  assert.equal(auto.measured(20 * MiB), false, "the compressed stream goes on");
  assert.equal(auto.decided, "zstd");
  assert.equal(auto.next(), "zstd");
});

test("auto goes back to plain where compression did not pay (a target whose CPU is the limit)", () => {
  const lines: string[] = [];
  const auto = new AutoCompression("gzip", (l) => lines.push(l));
  // The rates of an install's copy into the QEMU installer that kept gzip and was slower for it.
  auto.measured(4.8 * MiB);
  assert.ok(6.5 < 4.8 * GAIN);
  assert.equal(auto.measured(6.5 * MiB), true, "the compressed stream ends so the rest goes plain");
  assert.equal(auto.decided, "none");
  assert.equal(auto.next(), "none");
  assert.match(lines.join("\n"), /gzip took NARs in at 6\.5 MiB\/s, uncompressed 4\.8 MiB\/s; compression: none/);
});

test("auto whose copy ended before the compressed stretch could be measured says so, and reports plain", () => {
  const lines: string[] = [];
  const auto = new AutoCompression("zstd", (l) => lines.push(l));
  auto.measured(11 * MiB);
  assert.equal(auto.next(), "zstd", "the next stretch would have been measured compressed");
  assert.equal(auto.next(false), "none", "a stretch too short to measure goes plain");
  auto.unmeasured();
  assert.equal(auto.decided, "none");
  assert.equal(auto.next(), "none");
  assert.equal(lines.at(-1), "copy: too little was left to measure zstd; compression: none");
  auto.unmeasured();
  assert.equal(lines.length, 2, "said once");
  // A copy too short for even the plain measurement says nothing about compression.
  const quiet: string[] = [];
  const short = new AutoCompression("zstd", (l) => quiet.push(l));
  short.unmeasured();
  assert.equal(short.decided, "none");
  assert.deepEqual(quiet, []);
  // A decision already made stays.
  const kept = new AutoCompression("zstd");
  kept.measured(11 * MiB);
  kept.measured(30 * MiB);
  kept.unmeasured();
  assert.equal(kept.decided, "zstd");
});

test("auto without a compressor both ends have sends plain and measures nothing", () => {
  const auto = new AutoCompression("none");
  assert.equal(auto.decided, "none");
  assert.equal(auto.measured(MiB), false);
});

test("an explicit choice the target cannot decompress fails naming copy.compress", () => {
  assert.equal(chooseCompression("gzip", new Set(["gzip"])), "gzip");
  assert.throws(() => chooseCompression("zstd", new Set(["gzip"])), /copy\.compress is "zstd", but the target has no `zstd`/);
});

test("NAR hashes in SRI, Nix base32 and hex give the same hex", () => {
  const hex = "78ca8f0e40d54712d3ac28a97fadc393688adca88873f2b59d43d54ef8b5c727";
  assert.equal(narHashHex("sha256-eMqPDkDVRxLTrCipf63Dk2iK3KiIc/K1nUPVTvi1xyc="), hex);
  assert.equal(narHashHex("sha256:09y7npw4xma3knsz4ww8m3f8ls4kqfnpza98mk9i4iym8078zjkq"), hex);
  assert.equal(narHashHex(`sha256:${hex}`), hex);
  assert.throws(() => narHashHex("md5-abc"), /unrecognised/);
});
