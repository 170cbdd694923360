// Runtime faults of one target, each a clear error within a bounded time that leaves the
// machine as it was: a full /nix (the import fails, nothing half-registered, the error says
// how much space the copy needs), a machine without Nix or without NixOS to adopt, and a
// kexec after which the machine never comes back (its SSH gone for good).
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { runInstall } from "../../provider/install";
import { connect } from "../../provider/ssh";
import { adoptHost, switchHost } from "../../provider/host/operations";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

let full: TestHost;
let bare: TestHost;
let v1: string;
let big: string;

const spec = (host: TestHost, toplevel: string) =>
  nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, dialErrorLimit: 1 },
    system: { storePath: toplevel },
  });

before(async () => {
  [v1, big] = await Promise.all([
    buildTestSystem({ label: "full-v1" }),
    buildTestSystem({ label: "full-big", fillerCount: 8, fillerBytes: 48 * 1024 * 1024 }),
  ]);
  // A machine whose /nix is a 40 MiB filesystem: room for the running system, not for 48 MiB more.
  full = await startHost({ name: "fullnix", state: "nixos", system: v1 });
  await full.run("cp -a /nix /tmp/nix-copy && mount -t tmpfs -o size=40m tmpfs /nix && cp -a /tmp/nix-copy/. /nix && rm -rf /tmp/nix-copy");
  bare = await startHost({ name: "bare", state: "rescue" });
});
after(async () => {
  await Promise.all([full?.stop(), bare?.stop()]);
});

test("a full /nix: the copy fails saying how much space it needs, nothing is half-registered, the host keeps its system", async () => {
  const before = (await full.run("ls /nix/store | sort")).trim();
  const started = Date.now();
  await assert.rejects(switchHost(spec(full, big), big, undefined, () => {}), (err: Error) => {
    assert.match(err.message, /copy/);
    assert.match(err.message, /the target.s \/nix is full \(No space left on device\) after registering \d+ of \d+ paths; the \d+ paths not yet registered need \d+ MiB/);
    assert.match(err.message, /No space left on device/i);
    return true;
  });
  assert.ok((Date.now() - started) / 1000 < 60, "bounded");
  assert.equal((await full.run("readlink /run/current-system")).trim(), v1);
  assert.equal((await full.run("readlink -f /nix/var/nix/profiles/system")).trim(), v1, "profile unchanged");
  await full.run("nix-store --verify --check-contents");
  const invalid = await full.exec(`nix-store --check-validity ${big}`);
  assert.notEqual(invalid.code, 0, "the new toplevel is not registered");
  // Nothing half-registered: every new name in the store is either a valid, verified path
  // or not registered at all (a partial path Nix removes before it writes that path again).
  const after = (await full.run("ls /nix/store | grep -v '\\.lock$' | sort")).trim().split("\n");
  const added = after.filter((name) => !before.includes(name));
  assert.ok(added.length > 0, "some paths arrived before the disk filled up");
  // With room made, the same switch converges.
  await full.run("mount -o remount,size=200m /nix");
  const facts = await switchHost(spec(full, big), big, undefined, () => {});
  assert.equal(facts.currentSystem, big);
  await full.run(`nix-store --verify-path $(nix-store -qR ${big})`);
});

test("adopting a machine without Nix fails before anything is copied, saying what it found", async () => {
  await assert.rejects(adoptHost(spec(bare, v1), v1, () => {}), (err: Error) => {
    assert.match(err.message, /does not run NixOS|nix-store not found/);
    assert.match(err.message, /diskLayout/);
    return true;
  });
  assert.equal((await bare.run("ls -A /nix | wc -l")).trim(), "0", "nothing was written to /nix");
});

test("a kexec after which the machine never comes back fails within kexecSeconds, saying what the last contact showed", async () => {
  const rescue = await startHost({ name: "vanishing", state: "rescue" });
  try {
    // kexec/run as nixos-anywhere expects it, but the "new kernel" never brings SSH back.
    const work = mkdtempSync("/tmp/nixos-pulumi-vanish-");
    mkdirSync(path.join(work, "kexec"));
    writeFileSync(
      path.join(work, "kexec", "run"),
      '#!/bin/sh\necho "machine will boot into nixos in 1s..."\n(sleep 1; kill $(cat /run/sshd.pid)) </dev/null >/dev/null 2>&1 &\nexit 0\n',
    );
    chmodSync(path.join(work, "kexec", "run"), 0o755);
    const tarball = path.join(work, "vanish.tar.gz");
    await execa("tar", ["-C", work, "-czf", tarball, "kexec"]);
    const spec = nixosHostSchema.parse({
      connection: { host: rescue.address, privateKey: rescue.clientPrivateKey, hostKey: rescue.hostPublicKey },
      system: { storePath: v1 },
      install: { phases: ["kexec"], kexecTarball: tarball, timeouts: { kexecSeconds: 8 } },
    });
    const open = (hostKey?: string, c = spec.connection) => connect({ ...c, hostKey: undefined }, { pinnedHostKey: hostKey ?? rescue.hostPublicKey });
    const lines: string[] = [];
    const ctx = { spec, toplevel: v1, layout: undefined, progress: (l: string) => lines.push(l), session: await open(), connect: open };
    const started = Date.now();
    await assert.rejects(runInstall(ctx, ["kexec"]), (err: Error) => {
      assert.match(err.message, /did not come back with a new boot within 8s; last contact: SSH: .*(ECONNREFUSED|refused)/);
      assert.match(err.message, /console/);
      return true;
    });
    ctx.session.close();
    assert.ok((Date.now() - started) / 1000 < 25, "bounded by install.timeouts.kexecSeconds");
    assert.ok(lines.some((l) => /machine will boot into nixos/.test(l)), lines.join("\n"));
  } finally {
    await rescue.stop();
  }
});
