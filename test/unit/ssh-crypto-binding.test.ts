// ssh2's native crypto binding loads in the Node that runs the provider (setup rebuilds it),
// and a Node it was not built for gets the warning the copy prints.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { execa } from "execa";
import { cryptoBindingProblem, cryptoBindingWarning } from "../../provider/ssh/crypto-binding";

test("ssh2 loads its native crypto binding in this Node, so no warning is printed", () => {
  assert.equal(cryptoBindingProblem(), undefined);
  assert.equal(cryptoBindingWarning(), undefined);
  const constants = require("ssh2/lib/protocol/crypto.js") as { bindingAvailable: boolean };
  assert.equal(constants.bindingAvailable, true);
});

test("under a Node the binding was not built for, the warning names the cause and the fix", async () => {
  // The machine's own node (Debian's, which runs npm) is another ABI than node_modules/.bin/node.
  const other = "/usr/bin/node";
  const { stdout: version } = await execa(other, ["--version"]);
  assert.notEqual(version.trim(), process.version, `${other} must be another Node than ${process.version} for this test`);
  const module = path.resolve(__dirname, "../../provider/ssh/crypto-binding.js");
  const { stdout } = await execa(other, ["-e", `console.log(require(${JSON.stringify(module)}).cryptoBindingWarning())`]);
  assert.match(stdout, /ssh2 encrypts in JavaScript/);
  assert.match(stdout, /did not self-register|NODE_MODULE_VERSION|was compiled against/);
  // The fix is the one command that builds it for that Node where ssh2 is installed (this
  // checkout); test/unit/examples.test.ts runs it in a project that installed the tarball.
  assert.ok(stdout.includes(`build it for this Node with: cd ${path.resolve(__dirname, "../../..")} && PATH=/usr/bin:"$PATH" npm rebuild ssh2`), stdout);
});
