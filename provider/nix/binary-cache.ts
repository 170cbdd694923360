// A binary cache feeds the fleet: the deployer pushes a closure to the cache once per run
// (`nix copy --to`), checks the cache's copy carries a signature by binaryCache.publicKey,
// and each target substitutes it (`nix-store --realise` with that substituter and key)
// instead of receiving it from the deployer.
import { NixosPulumiError } from "../errors";
import type { Progress } from "../progress";
import type { BinaryCacheSpec } from "../schema/binary-cache";
import { shellQuote, tail, type SshSession } from "../ssh";
import { runNix } from "./run-nix";
import { NIX_FEATURES } from "./toplevel";

const pushed = new Map<string, Promise<void>>();

function withParam(url: string, name: string, value: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}${name}=${value}`;
}

/** Pushes the closure of `toplevel` to the cache: once per cache and toplevel in this process. */
export function pushToCache(cache: BinaryCacheSpec, toplevel: string, progress?: Progress): Promise<void> {
  const pushUrl = cache.pushUrl ?? cache.url;
  const key = `${pushUrl}\n${cache.secretKeyFile ?? ""}\n${cache.publicKey}\n${toplevel}`;
  let result = pushed.get(key);
  if (!result) {
    result = push(cache, pushUrl, toplevel, progress);
    pushed.set(key, result);
    result.catch(() => pushed.delete(key));
  }
  return result;
}

async function push(cache: BinaryCacheSpec, pushUrl: string, toplevel: string, progress?: Progress): Promise<void> {
  const started = Date.now();
  progress?.(`binary cache: pushing the closure of ${toplevel} to ${pushUrl}`);
  const target = cache.secretKeyFile ? withParam(pushUrl, "secret-key", cache.secretKeyFile) : pushUrl;
  await runNix("nix", [...NIX_FEATURES, "copy", "--to", target, toplevel], "binaryCache.pushUrl",
    `check that ${pushUrl} is writable from this machine (credentials for s3://, a writable directory for file://)`);
  // Fail here, once, before any target tries: every path must carry a signature the targets trust.
  const verify = await runNix("nix", [...NIX_FEATURES, "store", "verify", "--store", pushUrl, "--no-contents", "--recursive",
    "--option", "trusted-public-keys", cache.publicKey, toplevel], "binaryCache.publicKey", "").catch((err: Error) => err);
  if (verify instanceof Error) {
    const keyName = cache.publicKey.split(":")[0];
    throw new NixosPulumiError(`the closure in ${pushUrl} is not signed by binaryCache.publicKey (key "${keyName}")`, {
      step: "binaryCache.publicKey",
      output: verify.message.split("\n").filter((l) => /untrusted|signature|error/i.test(l)).slice(0, 10).join("\n"),
      hint: "give the public key of the cache's signing key as binaryCache.publicKey, or set binaryCache.secretKeyFile to the matching secret key so pushed paths are signed",
    });
  }
  progress?.(`binary cache: pushed and verified in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

/** The target fetches what it lacks of the closure from the cache; nothing comes from the deployer. */
export async function substituteFromCache(session: SshSession, cache: BinaryCacheSpec, toplevel: string, progress?: Progress): Promise<void> {
  await pushToCache(cache, toplevel, progress);
  const started = Date.now();
  const command = [
    "nix-store", "--realise", toplevel,
    "--option", "extra-substituters", cache.url,
    "--option", "extra-trusted-public-keys", cache.publicKey,
  ].map(shellQuote).join(" ");
  let fetched = 0;
  const result = await session.exec(command, {
    onStderr: (chunk) => {
      fetched += (chunk.toString().match(/^copying path /gm) ?? []).length;
    },
  });
  if (result.code !== 0) {
    const unsigned = /not signed by any of the keys|lacks a valid signature/.test(result.stderr);
    throw new NixosPulumiError(
      unsigned
        ? `the target does not trust the paths in ${cache.url}: they are not signed by binaryCache.publicKey`
        : `the target could not substitute ${toplevel} from binaryCache.url ${cache.url} (exit ${result.code ?? result.signal})`,
      {
        step: unsigned ? "binaryCache.publicKey" : "binaryCache.url",
        host: session.target,
        output: tail(result.stderr),
        hint: unsigned
          ? "give the public key of the key the cache signs with as binaryCache.publicKey"
          : "check that the target reaches binaryCache.url (from the target: curl <url>/nix-cache-info) and that its /nix has free space",
      },
    );
  }
  progress?.(`binary cache: the target fetched ${fetched} paths from ${cache.url} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}
