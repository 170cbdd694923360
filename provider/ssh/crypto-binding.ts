// Whether ssh2 encrypts with its native binding (OpenSSL, one call per packet) or fell back
// to JavaScript, which it does silently when the binding was built for another Node, or not
// built at all (an install that skipped ssh2's install script, as npm 12 does by default).
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";

const requireFromHere = createRequire(__filename);

/** Why ssh2's native crypto binding does not load here, or undefined when it does. */
export function cryptoBindingProblem(): string | undefined {
  try {
    const crypto = requireFromHere("ssh2/lib/protocol/crypto.js") as { bindingAvailable?: boolean };
    if (crypto.bindingAvailable) return undefined;
  } catch {
    /* fall through to the direct load, which says why */
  }
  try {
    requireFromHere("ssh2/lib/protocol/crypto/build/Release/sshcrypto.node");
    return "ssh2 did not pick up its native crypto binding";
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}

/**
 * The directory holding this Node's C headers (include/node), when they match its version:
 * an official Node install has them beside bin/, the npm package `node` in its platform package.
 * node-gyp needs them to build for this Node; without --nodedir it would use npm's default
 * (Debian's npm: /usr, the headers of Debian's own Node) or download them.
 */
export function nodeHeadersDir(execPath = process.execPath, version = process.version): string | undefined {
  const bin = path.dirname(execPath);
  const candidates = [path.resolve(bin, ".."), path.resolve(bin, "..", "node_modules", `node-${process.platform}-${process.arch}`)];
  for (const dir of candidates) {
    const header = path.join(dir, "include", "node", "node_version.h");
    if (!existsSync(header)) continue;
    const text = readFileSync(header, "utf8");
    const part = (name: string) => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(text)?.[1];
    if (`v${part("MAJOR")}.${part("MINOR")}.${part("PATCH")}` === version) return dir;
  }
  return undefined;
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** The one shell command that rebuilds ssh2's binding for this Node where ssh2 is installed. */
export function cryptoBindingFix(): string {
  const ssh2 = path.dirname(requireFromHere.resolve("ssh2/package.json"));
  const marker = `${path.sep}node_modules${path.sep}`;
  const project = ssh2.slice(0, ssh2.lastIndexOf(marker));
  const headers = nodeHeadersDir();
  // ssh2's install script builds for the `node` first in PATH: make that this one.
  return `cd ${shellQuote(project)} && PATH=${shellQuote(path.dirname(process.execPath))}:"$PATH" npm rebuild ssh2` +
    (headers ? ` --nodedir=${shellQuote(headers)}` : "");
}

/** A progress line for the copy, or undefined when ssh2 runs with its binding. */
export function cryptoBindingWarning(): string | undefined {
  const problem = cryptoBindingProblem();
  if (problem === undefined) return undefined;
  return (
    `warning: ssh2 encrypts in JavaScript, copies run about 1.5x slower: its native binding (sshcrypto.node) does not load in node ${process.version} (${problem}); ` +
    `build it for this Node with: ${cryptoBindingFix()}`
  );
}
