// What a switch says about reboots, on a test host: switch-to-configuration's exit 100
// ("reboot required") is no failure and never a rollback; a new kernel is reported as
// needsReboot (the host's `kernel` is the booted one); the activation script runs with a
// NixOS transient unit's PATH (systemd's bin only). The reboot itself is in the QEMU tier.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { switchHost, readHost } from "../../provider/host/operations";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { activationArgs, activationScript } from "../../provider/switch";
import { startHost, copyToHostStore, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

let host: TestHost;
let base: string;
before(async () => {
  base = await buildTestSystem({ label: "rb-base" });
  host = await startHost({ name: "rb", state: "nixos", system: base });
});
after(async () => host?.stop());

const spec = (toplevel: string, extra: Record<string, unknown> = {}) =>
  nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
    ...extra,
  });
const current = async () => (await host.run("readlink /run/current-system")).trim();

test("exit 100 from switch-to-configuration is 'reboot required': the new system is the boot default, nothing is rolled back", async () => {
  const changed = await buildTestSystem({ label: "rb-init", variant: "init-changed" });
  const lines: string[] = [];
  const facts = await switchHost(spec(changed), changed, undefined, (l) => lines.push(l));
  assert.ok(lines.some((l) => /reboot needed: the new system has another init/.test(l)), lines.join("\n"));
  assert.equal(facts.currentSystem, base, "still running the old system until the reboot");
  assert.equal((await host.run("readlink -f /nix/var/nix/profiles/system")).trim(), changed, "the profile is not rolled back");
  assert.equal((await host.run("cat /boot/default-system")).trim(), changed);
  // A refresh sees the host converged on the staged system, not drifted.
  const read = await readHost(spec(changed), changed, host.hostPublicKey);
  assert.equal(read.converged, changed);
  await switchHost(spec(base), base, undefined, () => {});
});

test('action "test" with exit 100 is no success: nothing was activated and no reboot would bring it', async () => {
  const changed = await buildTestSystem({ label: "rb-init", variant: "init-changed" });
  const bootDefault = (await host.run("cat /boot/default-system")).trim();
  await assert.rejects(
    switchHost(spec(changed, { switch: { action: "test" } }), changed, undefined, () => {}),
    /action "test" cannot activate it without a reboot[\s\S]*nothing was activated; the host runs what it ran before/,
  );
  assert.equal(await current(), base);
  assert.equal((await host.run("cat /boot/default-system")).trim(), bootDefault, "test does not touch the boot default");
});

test("switch.installBootloader installs a bootloader that is gone (nixos-rebuild --install-bootloader); without it the switch fails and says so", async () => {
  const next = await buildTestSystem({ label: "rb-bootloader" });
  await host.run("mv /boot/nixos-test-bootloader /boot/nixos-test-bootloader.saved");
  try {
    // The rollback meets the same missing bootloader, as on NixOS.
    await assert.rejects(switchHost(spec(next), next, undefined, () => {}), /Failed to install bootloader[\s\S]*fix: the machine's bootloader is missing or broken: set switch\.installBootloader: true/);
    assert.equal(await current(), base);
    const facts = await switchHost(spec(next, { switch: { installBootloader: true } }), next, undefined, () => {});
    assert.equal(facts.currentSystem, next);
    assert.match(await host.run("cat /boot/nixos-test-bootloader"), /installing the test bootloader/);
    assert.equal((await host.run("cat /boot/default-system")).trim(), next);
  } finally {
    await host.run("[ -e /boot/nixos-test-bootloader ] || mv /boot/nixos-test-bootloader.saved /boot/nixos-test-bootloader; rm -f /boot/nixos-test-bootloader.saved");
    await switchHost(spec(base), base, undefined, () => {});
  }
});

test('switch.installBootloader with action "test" is refused at check', () => {
  assert.throws(() => spec(base, { switch: { action: "test", installBootloader: true } }), /switch\.installBootloader goes with action ..switch.. or ..boot../);
});

test("a new kernel is reported as needsReboot, and `kernel` is the running (booted) kernel", async () => {
  const newKernel = await buildTestSystem({ label: "rb-kernel", kernelVersion: "6.9.0-test" });
  const lines: string[] = [];
  const facts = await switchHost(spec(newKernel), newKernel, undefined, (l) => lines.push(l));
  assert.equal(facts.currentSystem, newKernel);
  assert.equal(facts.needsReboot, true);
  assert.equal(facts.kernel, (await host.run(`readlink -f ${base}/kernel`)).trim(), "the booted kernel, not the new one");
  assert.ok(lines.some((l) => /reboot needed: the kernel, initrd or kernel modules changed/.test(l)), lines.join("\n"));
  const same = await buildTestSystem({ label: "rb-same-kernel" });
  const back = await switchHost(spec(same), same, undefined, () => {});
  assert.equal(back.needsReboot, false, "same kernel, initrd and modules as the booted system");
});

test("the activation script runs with only systemd's bin on PATH, as in a NixOS transient unit", async () => {
  const next = await buildTestSystem({ label: "rb-path" });
  await copyToHostStore(host, next);
  await host.run(`mkdir -p /run/act && cat > /run/act/activate.sh`, activationScript());
  const r = await host.exec(`env -i PATH=/nonexistent/systemd/bin /bin/sh /run/act/activate.sh ${activationArgs({ dir: "/run/act", toplevel: next, action: "switch", rollback: "on-failure" }).join(" ")}; cat /run/act/result /run/act/output`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ok\n/, r.stdout);
  assert.equal(await current(), next);
  assert.equal((await host.run("readlink -f /nix/var/nix/profiles/system")).trim(), next, "nix-env set the profile");
});
