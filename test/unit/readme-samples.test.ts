// The README's output samples (```text blocks) are either checked here against the output the
// provider really prints (addresses, ports and durations normalized) or say that they are
// abridged: a reworded message fails this test until the README shows the new words.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as net from "node:net";
import { readmeBlocks, type CodeBlock } from "../harness/readme";
import { connect } from "../../provider/ssh";
import { connectionSchema } from "../../provider/schema/connection";
import { schemaIssues } from "../../provider/schema/zod-errors";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { testClientKey } from "../harness/keys";

const samples = readmeBlocks().filter((b) => b.lang === "text" && b.section !== "Layout");

/** Where values differ from run to run: addresses with ports, durations, attempt counts. */
function normalize(text: string): string {
  return text
    .trim()
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:PORT")
    .replace(/\d+(\.\d+)? s\b/g, "N s")
    .replace(/\d+ attempts?/g, "N attempts");
}

function sample(fragment: string): CodeBlock {
  const found = samples.filter((b) => b.body.includes(fragment));
  assert.equal(found.length, 1, `one README sample holds ${JSON.stringify(fragment)}`);
  return found[0]!;
}

async function dialError(port: number, perDialTimeout?: number): Promise<string> {
  const connection = connectionSchema.parse({ host: "127.0.0.1", port, privateKey: (await testClientKey()).privateKey, ...(perDialTimeout ? { perDialTimeout } : {}) });
  try {
    await connect(connection);
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail("the dial succeeded");
}

const checked = new Set<CodeBlock>();

test("the refused-port sample is what the provider prints", async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const block = sample("ECONNREFUSED");
  assert.equal(normalize(await dialError(port)), normalize(block.body));
  checked.add(block);
});

test("the no-greeting sample is what the provider prints", { timeout: 60_000 }, async () => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const block = sample("sent no SSH greeting");
    assert.equal(normalize(await dialError((server.address() as net.AddressInfo).port, 2)), normalize(block.body));
    checked.add(block);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("the unknown-field sample is what the provider reports (after Pulumi's own prefix)", () => {
  const block = sample('unknown field "swich"');
  const ours = block.body.trim().split("\n").map((l) => l.replace(/^.* has a problem: /, ""));
  const issues = schemaIssues(nixosHostSchema, {
    connection: { host: "h", prot: 22 },
    system: { flake: ".#web" },
    swich: { action: "boot" },
  }).map((i) => `${i.path}: ${i.message}`);
  assert.deepEqual([...issues].sort(), [...ours].sort());
  checked.add(block);
});

test("every other README output sample says it is abridged", () => {
  for (const b of samples) {
    if (checked.has(b)) continue;
    assert.match(b.lead, /abridged/, `README.md:${b.line}: an output sample neither checked in ${__filename.replace(/.*dist\//, "")} nor labelled abridged`);
  }
});
