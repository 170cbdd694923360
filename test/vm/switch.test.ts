// Switches on a QEMU guest whose installed test system boots real systemd as PID 1, with the
// default environment of a NixOS transient unit (PATH = systemd's own bin directory only),
// so the provider's `systemd-run` activation path runs as on NixOS: a switch, a failed
// health check rolled back, magic rollback confirmed and not confirmed, an activation that
// cuts SSH, a reboot that empties /run/keys (refresh notices, the next run writes them again). One VM for the whole file, booted straight from a disk the harness wrote (the
// install path has its own file, install.test.ts).
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { nixosHostSchema, type NixosHostInput } from "../../provider/schema/nixos-host";
import { readHost, switchHost, updateKeys } from "../../provider/host/operations";
import { checkedKeys, planAllKeys, planKeys } from "../../provider/keys";
import { INSTALLED_ROOT_FSTAB, vmImages, startVm, type TestVm } from "../harness/vm";
import { buildTestSystem, type TestSystemOptions } from "../harness/systems";
import { generateKeyPair, type KeyPair } from "../harness/keys";

let vm: TestVm;
let hostKey: KeyPair;
let base: string;
const system = async (label: string, variant?: TestSystemOptions["variant"]) => {
  const images = await vmImages();
  return buildTestSystem({ label, variant, kernelFile: images.kernel, initrdFile: images.stage1Initrd, vmRuntime: images.runtime, fstab: INSTALLED_ROOT_FSTAB });
};

function spec(toplevel: string, switchOptions: NixosHostInput["switch"] = {}, keys: NixosHostInput["keys"] = {}) {
  const parsed = nixosHostSchema.parse({
    // QEMU accepts a forwarded connection and resets it while the guest's sshd is down: every
    // dial fails at once, so an SSH outage of 20 s needs more attempts and a longer deadline.
    connection: { host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey: hostKey.publicKey, dialErrorLimit: 200, perDialTimeout: 60 },
    system: { storePath: toplevel },
    switch: switchOptions,
    keys,
  });
  // As check hands them on: with defaults and digests.
  return { ...parsed, keys: checkedKeys(parsed.keys) as typeof parsed.keys };
}
const switchTo = (toplevel: string, switchOptions: NixosHostInput["switch"] = {}, logs: string[] = []) =>
  switchHost(spec(toplevel, switchOptions), toplevel, hostKey.publicKey, (line) => logs.push(line));
const run = async (command: string) => {
  const r = await vm.ssh(command);
  assert.equal(r.code, 0, `${command} exited ${r.code}: ${r.stdout}`);
  return r.stdout.trim();
};
/** `run`, tried again while the client's 3 s connect timeout expires (255) on a loaded machine. */
const runPatiently = async (command: string) => {
  for (let attempt = 1; ; attempt++) {
    const r = await vm.ssh(command);
    if (r.code !== 255 || attempt === 5) {
      assert.equal(r.code, 0, `${command} exited ${r.code}: ${r.stdout}`);
      return r.stdout.trim();
    }
  }
};
const current = () => run("readlink /run/current-system");
/** What a user checks after a switch: the service of that system answers with its label. */
const served = () => run("busybox wget -q -O - http://127.0.0.1:8080/");

before(async () => {
  hostKey = await generateKeyPair("vm-switch-host");
  base = await system("vm-sw-base");
  vm = await startVm({ installed: { toplevel: base, hostKey } });
  await vm.waitForSsh(180_000);
});

after(async (t) => {
  t.diagnostic(`console (tail):\n${vm?.consoleText().slice(-2500)}`);
  await vm?.stop();
});

test("the installed system runs systemd as PID 1; a transient unit's PATH holds only systemd's bin", async () => {
  assert.equal(await run("cat /proc/1/comm"), "systemd");
  assert.equal(await run("systemctl is-active sshd.service test-system.service test-service.service | sort -u"), "active");
  const path = await run("systemctl show-environment | sed -n 's/^PATH=//p'");
  assert.match(path, /^\/nix\/store\/[a-z0-9]{32}-runtime\/systemd\/bin\/$/);
  assert.deepEqual((await run(`ls ${path}`)).split("\n").sort(), ["journalctl", "systemctl", "systemd-escape", "systemd-run", "systemd-tmpfiles"]);
  // A command run by name inside a transient unit is not found, as on NixOS.
  const bare = await vm.ssh("systemd-run --quiet --wait --collect /bin/sh -c 'sed --version'");
  assert.notEqual(bare.code, 0, "a transient unit found sed on its PATH");
  assert.equal(await run("systemd-run --quiet --wait --collect /run/current-system/sw/bin/true && echo ran"), "ran");
  assert.equal(await served(), "vm-sw-base");
  assert.equal(await current(), base);
});

test("a switch runs the activation through systemd-run; the new system's service outlives the activation unit", async () => {
  const v2 = await system("vm-sw-2");
  const logs: string[] = [];
  const facts = await switchTo(v2, {}, logs);
  assert.equal(facts.currentSystem, v2, logs.join("\n"));
  assert.equal(await current(), v2);
  assert.equal(await run("readlink -f /nix/var/nix/profiles/system"), v2, "the system profile points at the new system");
  assert.equal(await run("ls /nix/var/nix/profiles | grep -c '^system-[0-9]*-link$'"), "2", "a new profile generation");
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await served(), "vm-sw-2", "the service started by the activation still runs after its unit ended");
  assert.equal(await run("systemctl list-units --all --no-legend 'nixos-pulumi-switch-*' | wc -l"), "0", "the activation unit was collected");
});

test("a failed health check rolls back to the previous system, profile included", async () => {
  const before = await current();
  const v3 = await system("vm-sw-3");
  await assert.rejects(
    switchTo(v3, { healthChecks: ['test "$(cat /run/current-system/nixos-version)" = some-other-label'] }),
    (err: Error) => {
      assert.match(err.message, /health check failed/);
      assert.match(err.message, /rolled back/);
      return true;
    },
  );
  assert.equal(await current(), before);
  assert.equal(await run("readlink -f /nix/var/nix/profiles/system"), before);
  assert.equal(await served(), "vm-sw-2");
});

test("magic rollback: a reachable new system is confirmed and stays", async () => {
  const v4 = await system("vm-sw-4");
  const logs: string[] = [];
  await switchTo(v4, { rollback: "magic", confirmTimeoutSeconds: 30 }, logs);
  assert.ok(logs.some((l) => /confirming over a new connection/.test(l)), logs.join("\n"));
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await current(), v4, "still the new system after the confirmation");
  assert.equal(await served(), "vm-sw-4");
});

test("magic rollback: a new system that loses SSH is not confirmed and rolls itself back", async () => {
  const before = await current();
  const lost = await system("vm-sw-lost", "lose-ssh");
  await assert.rejects(switchTo(lost, { rollback: "magic", confirmTimeoutSeconds: 8, timeoutSeconds: 120 }), (err: Error) => {
    assert.match(err.message, /could not confirm the new system/);
    assert.match(err.message, /rolled back/);
    return true;
  });
  await vm.waitForSsh(60_000);
  assert.equal(await current(), before);
  assert.equal(await run("readlink -f /nix/var/nix/profiles/system"), before);
  assert.equal(await served(), "vm-sw-4");
});

test("an activation that cuts SSH completes; its verdict is read over a new connection", async () => {
  const cut = await system("vm-sw-cut", "cut-ssh");
  const logs: string[] = [];
  const facts = await switchTo(cut, { timeoutSeconds: 120 }, logs);
  assert.equal(facts.currentSystem, cut);
  assert.ok(logs.some((l) => /connection dropped; reconnecting/.test(l)), logs.join("\n"));
  assert.equal(await current(), cut);
  assert.equal(await served(), "vm-sw-cut");
});

test("switch.rebootOnKernelChange: a new kernel reboots the machine, and the booted system is confirmed", async () => {
  const before = await current();
  const bootsBefore = vm.boots();
  const images = await vmImages();
  // The same kernel image in a store path of another name: to NixOS, another kernel.
  const newKernel = await buildTestSystem({
    label: "vm-sw-kernel",
    kernelVersion: "6.1.0-vm-next",
    kernelFile: images.kernel,
    initrdFile: images.stage1Initrd,
    vmRuntime: images.runtime,
    fstab: INSTALLED_ROOT_FSTAB,
  });
  // Keys in /run/keys before the reboot: the switch's own (tls.key) and one it does not carry
  // (api-token, standing for keys of a reboot the stack did not make).
  const tls = { content: "vm-tls-key", mode: "0400" };
  const both = { "api-token": { content: "vm-api-token" }, "tls.key": tls };
  const withBoth = spec(before, {}, both);
  const keyLogs: string[] = [];
  await updateKeys(withBoth, planAllKeys(withBoth.keys, "new"), hostKey.publicKey, (line) => keyLogs.push(line), "vm test");
  assert.equal(await runPatiently("cat /run/keys/api-token"), "vm-api-token", keyLogs.join("\n"));
  const logs: string[] = [];
  const facts = await switchHost(spec(newKernel, { rebootOnKernelChange: true, rebootTimeoutSeconds: 240 }, { "tls.key": tls }), newKernel, hostKey.publicKey, (line) => logs.push(line));
  assert.notEqual(before, newKernel);
  assert.ok(vm.boots() > bootsBefore, `the VM was powered on again from its disk:\n${logs.join("\n")}`);
  assert.ok(logs.some((l) => /reboot: rebooting into/.test(l)), logs.join("\n"));
  assert.equal(facts.bootedSystem, newKernel, "the booted system is the new one");
  assert.equal(facts.needsReboot, false);
  assert.equal(await run("readlink /run/booted-system"), newKernel);
  assert.equal(await current(), newKernel);

  // The reboot emptied /run/keys: the switch wrote its own key again, the other is gone.
  assert.equal(await runPatiently("cat /run/keys/tls.key; stat -c ' %U %a' /run/keys/tls.key"), "vm-tls-key root 400", logs.join("\n"));
  assert.notEqual((await vm.ssh("test -e /run/keys/api-token")).code, 0, "the reboot emptied /run/keys");
  // Refresh notices the missing key; the next up writes it again.
  const declared = spec(newKernel, {}, both);
  const { keyDrift } = await readHost(declared, newKernel, hostKey.publicKey);
  assert.deepEqual(keyDrift, { "api-token": "missing" });
  await updateKeys(declared, planKeys(declared.keys, declared.keys, keyDrift), hostKey.publicKey, () => {}, "vm test");
  assert.equal(await runPatiently("cat /run/keys/api-token; stat -c ' %U %a' /run/keys/api-token"), "vm-api-token root 600");
  assert.equal((await readHost(declared, newKernel, hostKey.publicKey)).keyDrift, undefined);
});

// Last: it leaves the VM without SSH.
test("a reboot into a system that does not come up fails within rebootTimeoutSeconds, naming the last contact", async () => {
  const images = await vmImages();
  const dead = await buildTestSystem({
    label: "vm-sw-dead",
    variant: "no-boot",
    kernelVersion: "6.1.0-vm-dead",
    kernelFile: images.kernel,
    initrdFile: images.stage1Initrd,
    vmRuntime: images.runtime,
    fstab: INSTALLED_ROOT_FSTAB,
  });
  const started = Date.now();
  await assert.rejects(switchTo(dead, { rebootOnKernelChange: true, rebootTimeoutSeconds: 60 }), (err: Error) => {
    assert.match(err.message, /\[.*: reboot\] the machine did not come back with a new boot within 60s; last contact: SSH: /);
    assert.match(err.message, /fix: look at the machine's console/);
    return true;
  });
  assert.ok(Date.now() - started < 180_000, "bounded by rebootTimeoutSeconds");
  assert.match(vm.consoleText(), /vm-sw-dead does not come up/, "the machine did boot the new system, which hung");
});
