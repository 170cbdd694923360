// Whether ssh2 encrypts with its native binding (OpenSSL, one call per packet) or fell back
// to JavaScript, which it does silently when the binding was built for another Node.
import { createRequire } from "node:module";

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

/** A progress line for the copy, or undefined when ssh2 runs with its binding. */
export function cryptoBindingWarning(): string | undefined {
  const problem = cryptoBindingProblem();
  if (problem === undefined) return undefined;
  return (
    `warning: ssh2 encrypts in JavaScript, copies run about 1.5x slower: its native binding (sshcrypto.node) does not load in node ${process.version} (${problem}); ` +
    "rebuild it for this Node: bash scripts/setup.sh, or in node_modules/ssh2/lib/protocol/crypto run node-gyp rebuild with this node"
  );
}
