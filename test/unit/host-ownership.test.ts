import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ensureMayManage, otherOwner } from "../../provider/host/ownership";
import { formatOwner, parseOwner } from "../../provider/switch/owner-record";
import { diffHost, explainHostDiff } from "../../provider/host/diff";

const A = { stack: "shop/prod", resource: "urn:pulumi:prod::shop::pulumi-nodejs:dynamic/nixos-pulumi:NixosHost::web" };
const B = { stack: "shop/staging", resource: "urn:pulumi:staging::shop::pulumi-nodejs:dynamic/nixos-pulumi:NixosHost::web" };

test("the owner record is one line: stack, then the resource's URN", () => {
  assert.equal(formatOwner(A), `shop/prod ${A.resource}`);
  assert.deepEqual(parseOwner(`${formatOwner(A)}\n`), A);
  assert.equal(parseOwner(""), undefined);
});

test("a machine nobody or we manage may be changed", () => {
  assert.equal(ensureMayManage("", A, undefined, "10.0.0.1"), undefined);
  assert.equal(ensureMayManage(formatOwner(A), A, undefined, "10.0.0.1"), undefined);
  // State written before the URN was recorded: the stack alone decides.
  assert.equal(otherOwner(formatOwner(A), { stack: A.stack, resource: "" }), undefined);
});

test("another stack's machine is refused, naming it and the takeOver that moves it", () => {
  assert.throws(() => ensureMayManage(formatOwner(A), B, undefined, "10.0.0.1"), (err: Error) => {
    assert.match(err.message, /^\[10\.0\.0\.1: ownership\] this machine is managed by stack shop\/prod \(resource urn:[^)]+::web\); stack shop\/staging/);
    assert.match(err.message, /fix: to move the machine to this stack on purpose, set takeOver: "shop\/prod"/);
    return true;
  });
  assert.throws(() => ensureMayManage(formatOwner(A), B, "shop/other", "h"), /takeOver is "shop\/other", which names another stack/);
  assert.deepEqual(ensureMayManage(formatOwner(A), B, "shop/prod", "h"), A);
});

test("a second resource of the same stack is refused; its takeOver is the other resource's URN", () => {
  const twin = { stack: A.stack, resource: A.resource.replace("::web", "::web2") };
  assert.throws(() => ensureMayManage(formatOwner(A), twin, undefined, "h"), new RegExp(`takeOver: "${A.resource.replace(/[/.]/g, "\\$&")}"`));
  assert.deepEqual(ensureMayManage(formatOwner(A), twin, A.resource, "h"), A);
});

test("a host another stack took over previews as an update that refuses, and says how to take it back", () => {
  const top = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-a";
  const news = { connection: { host: "h" }, system: { storePath: top }, toplevel: top };
  const olds = { ...news, managedBy: `stack ${B.stack} (resource ${B.resource})` };
  const result = diffHost(olds, news);
  assert.equal(result.changes, true);
  assert.deepEqual(result.replaces, []);
  const [line] = explainHostDiff(olds, news, result);
  assert.match(line!, /^taken over by stack shop\/staging .*: the update refuses and changes nothing on the machine; to take it back set takeOver: "shop\/staging"/);
  assert.equal(diffHost(news, news).changes, false);
});
