import { test } from "node:test";
import * as assert from "node:assert/strict";
import { diffHost, explainHostDiff } from "../../provider/host/diff";
import { explainHostCreate } from "../../provider/host/create-plan";
import { renderDeclared } from "../../provider/disk";
import { packageChanges, parseStoreName } from "../../provider/host/system-changes";
import { UNKNOWN } from "../../provider/util/unknown";

const A = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-a";
const B = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-b";
const base = {
  connection: { host: "10.0.0.1" },
  system: { storePath: A },
  toplevel: A,
  layoutHash: "1".repeat(64),
  reinstallTriggers: { vm: "i-1" },
};
const olds = { ...base, currentSystem: A, generation: 3, hostKey: "ssh-ed25519 AAAA", stateVersion: 1 };

test("nothing changed: no changes", () => {
  assert.deepEqual(diffHost(olds, base), { changes: false, replaces: [], deleteBeforeReplace: false });
});

test("a new toplevel is an update, not a replace", () => {
  const d = diffHost(olds, { ...base, system: { storePath: B }, toplevel: B });
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
});

test("a changed layout hash is a replace, deleted before it is replaced", () => {
  const d = diffHost(olds, { ...base, layoutHash: "2".repeat(64) });
  assert.deepEqual(d.replaces, ["diskLayout"]);
  assert.equal(d.deleteBeforeReplace, true);
});

test("a changed reinstall trigger is a replace", () => {
  const d = diffHost(olds, { ...base, reinstallTriggers: { vm: "i-2" } });
  assert.deepEqual(d.replaces, ["reinstallTriggers"]);
});

test("an unknown trigger (a VM about to be replaced) previews as a replace", () => {
  const d = diffHost(olds, { ...base, reinstallTriggers: { vm: UNKNOWN } });
  assert.deepEqual(d.replaces, ["reinstallTriggers"]);
});

test("only the connection changed: an update with nothing to switch", () => {
  const d = diffHost(olds, { ...base, connection: { host: "10.0.0.2" } });
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
});

test("a refreshed (drifted) toplevel in state makes the next up an update back", () => {
  const d = diffHost({ ...olds, toplevel: B }, base);
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
});

test("triggers added to a host that had none record a baseline: an update, no reinstall", () => {
  const before = { ...olds, reinstallTriggers: {} };
  const d = diffHost(before, { ...base, reinstallTriggers: { vm: "i-1" } });
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
  assert.deepEqual(explainHostDiff(before, { ...base, reinstallTriggers: { vm: "i-1" } }, d), [
    "update: reinstallTriggers (baseline recorded, no reinstall) changed; nothing runs on the machine",
  ]);
  const noField = { ...olds } as Record<string, unknown>;
  delete noField["reinstallTriggers"];
  assert.deepEqual(diffHost(noField, { ...base, reinstallTriggers: { vm: UNKNOWN } }).replaces, []);
});

test("a switch says old → new store path", () => {
  const news = { ...base, system: { storePath: B }, toplevel: B };
  assert.deepEqual(explainHostDiff(olds, news, diffHost(olds, news)), [`switch: ${A} → ${B}`]);
});

test("a replace says whether it wipes disks (reinstall) or re-adopts", () => {
  const layout = { declared: { disk: { main: { device: "/dev/sda" } } } };
  const reinstall = { ...base, diskLayout: layout, reinstallTriggers: { vm: "i-2" } };
  assert.match(explainHostDiff(olds, reinstall, diffHost(olds, reinstall))[0]!, /^reinstall \(reinstallTriggers\.vm i-1 → i-2\): wipes \/dev\/sda and installs \/nix\/store\//);
  const readopt = { ...base, reinstallTriggers: { vm: "i-2" } };
  assert.match(explainHostDiff(olds, readopt, diffHost(olds, readopt))[0]!, /^re-adopt \(reinstallTriggers\.vm i-1 → i-2\): .*no disk is touched$/);
});

test("a drifted host says what it runs and what is declared", () => {
  const drifted = { ...olds, toplevel: B, deployedToplevel: A };
  assert.deepEqual(explainHostDiff(drifted, base, diffHost(drifted, base)), [
    `drift: running ${B} (changed outside Pulumi), declared ${A}: the update switches it back`,
  ]);
});

test("a changed connection says nothing runs and the new address is verified", () => {
  const news = { ...base, connection: { host: "10.0.0.2" } };
  assert.match(explainHostDiff(olds, news, diffHost(olds, news)).join("\n"), /connection changed; nothing runs on the machine \(a changed address or host key is verified with an SSH handshake\)/);
});

test("store names split like Nix's parseDrvName; closures compare nvd-style", () => {
  assert.deepEqual(parseStoreName("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-openssl-3.0.13"), { name: "openssl", version: "3.0.13" });
  assert.deepEqual(parseStoreName("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-web1-24.05"), { name: "nixos-system-web1", version: "24.05" });
  assert.deepEqual(parseStoreName("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-etc"), { name: "etc", version: "" });
  const p = (name: string, narSize: number) => ({ path: `/nix/store/${"a".repeat(32)}-${name}`, narSize });
  const lines = packageChanges(
    [p("nginx-1.24.0", 2 * 1024 * 1024), p("openssl-3.0.13", 1024 * 1024), p("htop-3.3.0", 1024 * 1024)],
    [p("nginx-1.26.1", 2 * 1024 * 1024), p("openssl-3.0.13", 1024 * 1024), p("curl-8.7.1", 3 * 1024 * 1024)],
  );
  assert.deepEqual(lines, ["changed: nginx 1.24.0 → 1.26.1", "added: curl 8.7.1", "removed: htop 3.3.0", "closure: 4.0 → 6.0 MiB (+2.0 MiB)"]);
});

test("a create's preview line: adopt wipes nothing; an install names kexec, each wiped disk with its partition sizes, and what its phases leave out", async () => {
  assert.deepEqual(explainHostCreate({ ...base }, undefined), [`adopt: the machine must already run NixOS; switches it to ${A} unless it runs it already. Nothing is wiped: no kexec, no disk is touched`]);
  const declared = {
    disk: {
      a: { device: "/dev/sda", content: { type: "gpt", partitions: { ESP: { size: "512M", type: "EF00" }, root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } },
      b: { device: "/dev/sdb", content: { type: "gpt", partitions: { swap: { start: "1M", end: "-1G", content: { type: "swap" } }, tail: { size: "100M" } } } },
    },
  };
  const layout = await renderDeclared(declared);
  const host = { ...base, diskLayout: { declared } };
  assert.deepEqual(explainHostCreate(host, layout), [
    `install: kexec into the NixOS installer (skipped if the machine already runs it), then wipes /dev/sda (GPT: ESP 512M, root the rest of the disk) and /dev/sdb (GPT: swap up to 1G before the end, tail 100M), then installs ${A}, then reboots into it`,
  ]);
  assert.match(explainHostCreate({ ...host, install: { phases: ["install"] } }, layout)[0]!, /^install \(phases install\): no kexec .*, then nothing is wiped \(no disko phase: installs onto what is mounted at \/mnt\), then installs .*, then no reboot$/);
  assert.match(explainHostCreate({ ...host, diskLayout: UNKNOWN }, undefined)[0]!, /wipes the disks of its layout \(not known until the update runs\)/);
  assert.match(explainHostCreate({ ...host, toplevel: UNKNOWN }, layout)[0]!, /installs \(a system not known until the update runs\)/);
});
