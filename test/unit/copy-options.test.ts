// copy.compress is read (not accepted and dropped), bad values name the field, `auto` picks
// by the measured link rate and what the target has, and NAR hashes convert as Nix prints them.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseHostInputs } from "../../provider/host/validate";
import { InputError } from "../../provider/errors";
import { chooseCompression } from "../../provider/copy/compression";
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

test("auto compresses only on a slow link, with what the target has", () => {
  const both = new Set(["zstd", "gzip"]);
  assert.equal(chooseCompression("auto", both, 200 * MiB), "none");
  assert.equal(chooseCompression("auto", both, 40 * MiB), "none");
  assert.equal(chooseCompression("auto", both, 11 * MiB), "zstd");
  assert.equal(chooseCompression("auto", new Set(["gzip"]), 11 * MiB), "none");
  assert.equal(chooseCompression("auto", new Set(["gzip"]), 2 * MiB), "gzip");
  assert.equal(chooseCompression("auto", new Set(), 1 * MiB), "none");
  assert.equal(chooseCompression("auto", both, undefined), "none");
});

test("an explicit choice the target cannot decompress fails naming copy.compress", () => {
  assert.equal(chooseCompression("gzip", new Set(["gzip"]), 500 * MiB), "gzip");
  assert.throws(() => chooseCompression("zstd", new Set(["gzip"])), /copy\.compress is "zstd", but the target has no `zstd`/);
});

test("NAR hashes in SRI, Nix base32 and hex give the same hex", () => {
  const hex = "78ca8f0e40d54712d3ac28a97fadc393688adca88873f2b59d43d54ef8b5c727";
  assert.equal(narHashHex("sha256-eMqPDkDVRxLTrCipf63Dk2iK3KiIc/K1nUPVTvi1xyc="), hex);
  assert.equal(narHashHex("sha256:09y7npw4xma3knsz4ww8m3f8ls4kqfnpza98mk9i4iym8078zjkq"), hex);
  assert.equal(narHashHex(`sha256:${hex}`), hex);
  assert.throws(() => narHashHex("md5-abc"), /unrecognised/);
});
