// Bad binaryCache inputs are answered by `check`, before any connection, naming the field.
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import { check } from "../../provider/resources/nixos-host-impl";
import { generateKeyPair, type KeyPair } from "../harness/keys";
import { generateCacheKey, type CacheKey } from "../harness/binary-cache";
import { buildTestSystem } from "../harness/systems";

let key: KeyPair;
let cacheKey: CacheKey;
let storePath: string;

before(async () => {
  key = await generateKeyPair("binary-cache-inputs");
  cacheKey = await generateCacheKey("inputs-cache-1");
  storePath = await buildTestSystem({ label: "cache-inputs" });
});

const inputs = (binaryCache: unknown, extra: Record<string, unknown> = {}) => ({
  connection: { host: "127.0.0.1", privateKey: key.privateKey },
  system: { storePath },
  binaryCache,
  ...extra,
});

async function rejectsWith(news: Record<string, unknown>, field: RegExp, message: RegExp) {
  // check answers bad input with Pulumi check failures, one per field.
  const text = ((await check({}, news)).failures ?? []).map((f) => f.reason).join("\n");
  assert.match(text, field);
  assert.match(text, message);
}

test("a valid binaryCache passes check", async () => {
  const { inputs: checked } = await check({}, inputs({ url: "https://cache.example.com", pushUrl: "s3://bucket?region=eu-west-1", publicKey: cacheKey.publicKey, secretKeyFile: cacheKey.secretKeyFile }));
  assert.equal(checked!["toplevel"], storePath);
});

test("bad binaryCache fields each get an error naming the field and the fix", async () => {
  await rejectsWith(inputs({ url: "cache.example.com", publicKey: cacheKey.publicKey }), /binaryCache\.url/, /Nix store URL/);
  await rejectsWith(inputs({ url: "https://c", pushUrl: "/srv/cache", publicKey: cacheKey.publicKey }), /binaryCache\.pushUrl/, /file:\/\/\/srv\/cache/);
  await rejectsWith(inputs({ url: "https://c", publicKey: "not-a-key" }), /binaryCache\.publicKey/, /name:base64/);
  await rejectsWith(inputs({ url: "https://c", publicKey: cacheKey.publicKey, secretKeyFile: "/nonexistent/key" }), /binaryCache\.secretKeyFile/, /does not exist/);
  await rejectsWith(inputs({ url: "https://c", publicKey: cacheKey.publicKey, signingKey: "x" }), /binaryCache/, /signingKey/);
});

test("binaryCache with build.on \"target\" is refused: the cache is fed what this machine built", async () => {
  await rejectsWith(inputs({ url: "https://c", publicKey: cacheKey.publicKey }, { build: { on: "target" } }), /binaryCache/, /build\.on/);
});
