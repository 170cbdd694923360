// build.on = "target": the derivations are copied and realised on the target (for an
// install: straight into /mnt's store, as nixos-install builds with --store); the deployer
// never builds (or stores) the system itself.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { installHost, switchHost } from "../../provider/host/operations";
import { evalToplevel } from "../../provider/nix";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem, SYSTEM_NIX } from "../harness/systems";

let host: TestHost | undefined;

const busybox = async () => (await execa("nix-build", ["--no-out-link", path.join(path.dirname(SYSTEM_NIX), "busybox.nix")])).stdout.trim();
async function importIntoRoot(target: TestHost, storePath: string, root: string): Promise<void> {
  const { stdout: closure } = await execa("nix-store", ["-qR", storePath]);
  const exported = await execa("nix-store", ["--export", ...closure.split("\n")], { encoding: "buffer" });
  await target.run(`nix-store --store ${root} --import >/dev/null`, Buffer.from(exported.stdout));
}
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

test("a package built on the target (not a NixOS system) is refused before the profile is set", async () => {
  assert.ok(host, "the first test started the target");
  const dir = mkdtempSync("/tmp/nixos-pulumi-bt-package-");
  try {
    const file = path.join(dir, "package.nix");
    writeFileSync(file, `{ label }: derivation { name = "package-\${label}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ]; }\n`);
    const spec = nixosHostSchema.parse({
      connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { expression: { file, args: { label: randomBytes(4).toString("hex") } } },
      build: { on: "target" },
    });
    const toplevel = await evalToplevel(spec.system);
    const profileBefore = await host.run("readlink /nix/var/nix/profiles/system");
    await assert.rejects(switchHost(spec, toplevel, undefined, () => {}), /is not a NixOS system: it has no bin\/switch-to-configuration, init, nixos-version[\s\S]*fix: system\.expression must select a NixOS toplevel/);
    assert.equal(await host.run("readlink /nix/var/nix/profiles/system"), profileBefore, "no generation was added");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an install with build.on target builds into /mnt's store: never on the deployer, never in the installer's own store", async () => {
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
    // Nix builds for /mnt's store in its sandbox, where the test systems' busybox (copied from
    // this machine's /bin by an impure builder) cannot build: /mnt's store gets it the way a real
    // install gets everything but the system itself, as a substitute.
    await importIntoRoot(installer, await busybox(), "/mnt");
    const lines: string[] = [];
    await installHost(spec, toplevel, (l) => lines.push(l));
    assert.ok(lines.some((l) => /nix-store --store \/mnt --realise/.test(l)), lines.join("\n"));
    const local = await execa("nix-store", ["--check-validity", toplevel], { reject: false });
    assert.notEqual(local.exitCode, 0, "the deployer never built the system");
    assert.equal((await installer.exec(`nix-store --store /mnt --check-validity ${toplevel}`)).code, 0, "the system is in /mnt's store");
    assert.notEqual((await installer.exec(`nix-store --check-validity ${toplevel}`)).code, 0, "and not in the installer's RAM store");
    assert.equal((await installer.run("readlink -f /mnt/nix/var/nix/profiles/system")).trim(), toplevel);
    assert.equal((await installer.run("cat /mnt/boot/default-system")).trim(), toplevel, "nixos-install installed the bootloader");
  } finally {
    await installer.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
    await installer.stop();
  }
});
