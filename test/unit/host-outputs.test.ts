// NixosHost's outputs are declared once (provider/host/outputs.ts): the resource class
// declares an output for every fact and bookkeeping key it exposes, and none that the list lacks.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { FACT_OUTPUTS, HOST_OUTPUTS } from "../../provider/host/outputs";
import { hostInputIssues } from "../../provider/host/validate";

const source = readFileSync(path.resolve(__dirname, "../../../provider/resources/nixos-host.ts"), "utf8");
const declared = [...source.matchAll(/declare readonly (\w+): pulumi\.Output</g)].map((m) => m[1]!);

test("NixosHost declares an output for every fact, and only outputs the list has", () => {
  assert.deepEqual(FACT_OUTPUTS.filter((k) => !declared.includes(k)), []);
  assert.deepEqual(declared.filter((k) => !HOST_OUTPUTS.includes(k)), []);
});

test("recorded outputs handed back as inputs are not reported as unknown fields", () => {
  const props: Record<string, unknown> = { connection: { host: "192.0.2.1" }, system: { storePath: "/nix/store/00000000000000000000000000000000-nixos-system-x-1" } };
  for (const key of HOST_OUTPUTS) props[key] = "x";
  assert.deepEqual(hostInputIssues(props), []);
});
