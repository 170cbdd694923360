// build.on = "target": the derivations are copied and realised on the target (for an
// install: in the installer, then copied into /mnt); the deployer never builds (or stores)
// the system itself.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execa } from "execa";
import { switchHost } from "../../provider/host/operations";
import { runInstall } from "../../provider/install";
import { connect } from "../../provider/ssh";
import { evalToplevel } from "../../provider/nix";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem, SYSTEM_NIX } from "../harness/systems";

let host: TestHost | undefined;
after(async () => host?.stop());

test("a system built on the target runs there and was never built here", async () => {
  host = await startHost({ name: "builder", state: "nixos", system: await buildTestSystem({ label: "bt-base" }) });
  const label = `built-on-target-${randomBytes(4).toString("hex")}`;
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { expression: { file: SYSTEM_NIX, args: { label } } },
    build: { on: "target" },
  });
  const toplevel = await evalToplevel(spec.system);
  const lines: string[] = [];
  const facts = await switchHost(spec, toplevel, undefined, (l) => lines.push(l));
  assert.equal(facts.currentSystem, toplevel);
  assert.equal((await host.run("cat /etc/nixos-test-release")).trim(), label);
  assert.ok(lines.some((l) => /nix-store --realise/.test(l)), lines.join("\n"));
  const local = await execa("nix-store", ["--check-validity", toplevel], { reject: false });
  assert.notEqual(local.exitCode, 0, "the toplevel is not in the deployer's store");
});

test("an install with build.on target realises the system in the installer and installs it from there", async () => {
  const installer = await startHost({ name: "bt-inst", state: "installer", disks: [{ name: "vda", sizeMiB: 256 }] });
  try {
    const label = `installed-from-target-${randomBytes(4).toString("hex")}`;
    const spec = nixosHostSchema.parse({
      connection: { host: installer.address, privateKey: installer.clientPrivateKey, hostKey: installer.hostPublicKey },
      system: { expression: { file: SYSTEM_NIX, args: { label } } },
      build: { on: "target" },
      install: { phases: ["install"] },
    });
    const toplevel = await evalToplevel(spec.system);
    await installer.run("mkfs.ext4 -q /dev/vda && mount /dev/vda /mnt");
    const lines: string[] = [];
    const session = await connect(spec.connection);
    await runInstall({ spec, toplevel, layout: undefined, progress: (l) => lines.push(l), session, connect: () => connect(spec.connection) }, ["install"]);
    session.close();
    assert.ok(lines.some((l) => /nix-store --realise/.test(l)), lines.join("\n"));
    assert.equal((await installer.run("readlink -f /mnt/nix/var/nix/profiles/system")).trim(), toplevel);
    assert.equal((await installer.run("cat /mnt/boot/default-system")).trim(), toplevel, "nixos-install installed the bootloader");
    const local = await execa("nix-store", ["--check-validity", toplevel], { reject: false });
    assert.notEqual(local.exitCode, 0, "the toplevel is not in the deployer's store");
  } finally {
    await installer.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
    await installer.stop();
  }
});
