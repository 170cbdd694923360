// `nix path-info --json` in each shape the matrix's Nix versions print (2.8: object keyed by
// path; before 2.19: a list; 2.33+: "version"/"storeDir" in each entry with --json-format 1,
// the {version: 2, storeDir, info} wrapper with --json-format 2, base names, structured ca),
// read to the same path info. The real outputs are exercised in test/integration/nix-matrix.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { contentAddressText, parsePathInfoJson, pathInfoJsonArgs } from "../../provider/nix/path-info-json";
import { nixBase32Encode, narHashHex } from "../../provider/nix/nar-hash";
import { parseNixVersion } from "../../provider/nix/nix-version";

const hex = "78ca8f0e40d54712d3ac28a97fadc393688adca88873f2b59d43d54ef8b5c727";
const sri = "sha256-eMqPDkDVRxLTrCipf63Dk2iK3KiIc/K1nUPVTvi1xyc=";
const nix32 = "09y7npw4xma3knsz4ww8m3f8ls4kqfnpza98mk9i4iym8078zjkq";
const a = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a";
const b = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b";
const drv = "/nix/store/dddddddddddddddddddddddddddddddd-a.drv";
const base = (p: string) => p.slice("/nix/store/".length);

const expected = [
  { path: a, narSize: 120, narHash: hex, references: [a, b], deriver: drv, registrationTime: 1700000000, ultimate: true, sigs: ["k:s"], ca: "" },
  { path: b, narSize: 8, narHash: hex, references: [], deriver: "", registrationTime: 0, ultimate: false, sigs: [], ca: `fixed:r:sha256:${nix32}` },
];

test("Nix base32 encodes as Nix prints it", () => {
  assert.equal(nixBase32Encode(Buffer.from(hex, "hex")), nix32);
  assert.equal(narHashHex({ algorithm: "sha256", format: "base16", hash: hex }), hex);
  assert.equal(narHashHex({ algorithm: "sha256", format: "nix32", hash: nix32 }), hex);
  assert.equal(narHashHex({ algorithm: "sha256", format: "base64", hash: sri.slice(7) }), hex);
});

test("Nix 2.8 (object keyed by full path, string hashes) and Nix < 2.19 (a list) read alike", () => {
  const v1 = {
    [a]: { narHash: `sha256:${nix32}`, narSize: 120, references: [a, b], deriver: drv, registrationTime: 1700000000, ultimate: true, signatures: ["k:s"] },
    [b]: { narHash: sri, narSize: 8, references: [], ca: `fixed:r:sha256:${nix32}` },
  };
  assert.deepEqual(parsePathInfoJson(JSON.stringify(v1)), expected);
  const list = Object.entries(v1).map(([path, info]) => ({ path, ...info }));
  assert.deepEqual(parsePathInfoJson(JSON.stringify(list)), expected);
});

test("Nix 2.33+ --json-format 1 (version and storeDir in each entry) reads alike", () => {
  const v1 = {
    [a]: { version: 1, storeDir: "/nix/store", narHash: sri, narSize: 120, references: [a, b], ca: null, deriver: drv, registrationTime: 1700000000, ultimate: true, signatures: ["k:s"] },
    [b]: { version: 1, storeDir: "/nix/store", narHash: sri, narSize: 8, references: [], ca: `fixed:r:sha256:${nix32}`, deriver: null, registrationTime: null, ultimate: false, signatures: [] },
  };
  assert.deepEqual(parsePathInfoJson(JSON.stringify(v1)), expected);
});

test("Nix 2.33+ --json-format 2 (wrapper, base names, structured ca) reads alike", () => {
  const v2 = {
    version: 2,
    storeDir: "/nix/store",
    info: {
      [base(a)]: { version: 2, storeDir: "/nix/store", narHash: sri, narSize: 120, references: [base(a), base(b)], ca: null, deriver: base(drv), registrationTime: 1700000000, ultimate: true, signatures: ["k:s"] },
      [base(b)]: { version: 2, storeDir: "/nix/store", narHash: sri, narSize: 8, references: [], ca: { method: "nar", hash: sri }, deriver: null, registrationTime: null, ultimate: false, signatures: [] },
    },
  };
  assert.deepEqual(parsePathInfoJson(JSON.stringify(v2)), expected);
});

test("format 2's content addresses become the text form every Nix's serve protocol reads", () => {
  assert.equal(contentAddressText({ method: "text", hash: sri }), `text:sha256:${nix32}`);
  assert.equal(contentAddressText({ method: "flat", hash: sri }), `fixed:sha256:${nix32}`);
  assert.equal(contentAddressText({ method: "nar", hash: sri }), `fixed:r:sha256:${nix32}`);
  assert.equal(contentAddressText({ method: "nar", hash: { algorithm: "sha256", format: "base16", hash: hex } }), `fixed:r:sha256:${nix32}`);
  assert.equal(contentAddressText(null), "");
  assert.throws(() => contentAddressText({ method: "weird", hash: sri }), /unrecognised content address/);
});

test("an invalid path (null entry) and an unknown format version fail, saying which", () => {
  assert.throws(() => parsePathInfoJson(JSON.stringify({ [a]: null })), /aaaa-a is not a valid path/);
  assert.throws(() => parsePathInfoJson(JSON.stringify({ version: 2, storeDir: "/nix/store", info: { [base(a)]: null } })), /aaaa-a is not a valid path/);
  assert.throws(() => parsePathInfoJson(JSON.stringify({ version: 3, storeDir: "/nix/store", info: {} })), /JSON format 3/);
});

test("--json-format 2 is asked only of Nix 2.33 and later, which have it", () => {
  assert.deepEqual(pathInfoJsonArgs(parseNixVersion("nix (Nix) 2.8.0")), ["--json"]);
  assert.deepEqual(pathInfoJsonArgs(parseNixVersion("nix (Nix) 2.26.3")), ["--json"]);
  assert.deepEqual(pathInfoJsonArgs(parseNixVersion("nix (Nix) 2.33.0")), ["--json", "--json-format", "2"]);
  assert.deepEqual(pathInfoJsonArgs(parseNixVersion("nix (Nix) 2.34.8")), ["--json", "--json-format", "2"]);
  assert.deepEqual(pathInfoJsonArgs(parseNixVersion("nix (Determinate Nix 3.8.2) 2.30.1")), ["--json"]);
  assert.throws(() => parseNixVersion("nix"), /cannot read a version/);
});
