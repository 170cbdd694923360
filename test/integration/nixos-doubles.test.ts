// The strict doubles of real NixOS, each checked against the contract it enforces
// (test/fixtures/CONTRACTS.md): switch-to-configuration-ng's preconditions and exit codes,
// and the installer's nixos-install / nixos-enter. A double that accepts what the real
// thing refuses would let the provider's bugs pass.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startHost, copyToHostStore, type TestHost } from "../harness/hosts";
import { buildTestSystem, UNIT_SCENARIO, UNIT_SCENARIO_JOBS } from "../harness/systems";
import { bootUnits, byName, planUnits, unitPlanLines, type UnitPlan } from "../../provider/host/unit-plan";

let nixos: TestHost;
let installer: TestHost;
let v1: string;
/** Makes `system` the newest generation of the system profile, as a deployer does before switch/boot. */
const setProfile = (host: TestHost, system: string) => host.run(`nix-env -p /nix/var/nix/profiles/system --set ${system}`);
/** nixos-install as nixos-anywhere runs it: /run/current-system/sw/bin on PATH (a NixOS installer's own PATH has it). */
const NIXOS_INSTALL = 'PATH="$PATH:/run/current-system/sw/bin" nixos-install';

before(async () => {
  v1 = await buildTestSystem({ label: "dbl-v1" });
  [nixos, installer] = await Promise.all([
    startHost({ name: "dblnixos", state: "nixos", system: v1 }),
    startHost({ name: "dblinst", state: "installer", disks: [{ name: "vda", sizeMiB: 256 }] }),
  ]);
});
after(async () => {
  await installer?.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
  await Promise.all([nixos?.stop(), installer?.stop()]);
});

test("switch-to-configuration refuses a machine whose /etc/os-release is missing, or that is not NixOS", async () => {
  await copyToHostStore(installer, v1);
  await installer.run("mkdir -p /tmp/bare/etc && cp /etc/os-release /tmp/os-release.saved");
  // No os-release at all (a root where the activation script never ran).
  const missing = await installer.exec(`mv /etc/os-release /tmp/x && ${v1}/bin/switch-to-configuration test; code=$?; mv /tmp/x /etc/os-release; exit $code`);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Failed to parse os-release/);
  // Another distribution, no /etc/NIXOS.
  const other = await installer.exec(`printf 'ID=debian\\n' > /etc/os-release; ${v1}/bin/switch-to-configuration test; code=$?; cp /tmp/os-release.saved /etc/os-release; exit $code`);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /This is not a NixOS installation!/);
});

test("a first bootloader install needs NIXOS_INSTALL_BOOTLOADER=1; later ones do not", async () => {
  const v2 = await buildTestSystem({ label: "dbl-v2" });
  await copyToHostStore(nixos, v2);
  await setProfile(nixos, v2);
  // The host was installed with the variable (as nixos-install does): updating works without it.
  assert.equal((await nixos.exec(`${v2}/bin/switch-to-configuration boot`)).code, 0);
  assert.equal((await nixos.run("cat /boot/default-system")).trim(), v2);
  // A machine without a bootloader yet: refused unless the variable is set.
  const fresh = await nixos.exec(`rm /boot/nixos-test-bootloader && ${v2}/bin/switch-to-configuration boot`);
  assert.equal(fresh.code, 1);
  assert.match(fresh.stderr, /Failed to install bootloader/);
  assert.equal((await nixos.exec(`NIXOS_INSTALL_BOOTLOADER=1 ${v2}/bin/switch-to-configuration boot`)).code, 0);
  await setProfile(nixos, v1);
  await nixos.run(`${v1}/bin/switch-to-configuration boot`);
});

test("the boot default is only ever a generation of the system profile, as real bootloader builders do", async () => {
  const v4 = await buildTestSystem({ label: "dbl-v4" });
  await copyToHostStore(nixos, v4);
  // Not in the profile: no entry; the default stays (a deployer that switches before setting the profile boots the old system).
  const stray = await nixos.exec(`${v4}/bin/switch-to-configuration boot`);
  assert.equal(stray.code, 0, stray.stderr);
  assert.match(stray.stderr, /no generation of \/nix\/var\/nix\/profiles\/system/);
  assert.equal((await nixos.run("cat /boot/default-system")).trim(), v1, "the default entry is unchanged");
  // An older generation (not the newest) may be the default: the toplevel given decides.
  await setProfile(nixos, v4);
  await setProfile(nixos, v1);
  assert.equal((await nixos.exec(`${v4}/bin/switch-to-configuration boot`)).code, 0);
  assert.equal((await nixos.run("cat /boot/default-system")).trim(), v4);
  await nixos.run(`${v1}/bin/switch-to-configuration boot`);
  assert.equal((await nixos.run("cat /boot/default-system")).trim(), v1);
});

test("a failing pre-switch check stops every action (exit 1) unless NIXOS_NO_CHECK=1", async () => {
  const inhibited = await buildTestSystem({ label: "dbl-inhibited", variant: "pre-switch-fail" });
  await copyToHostStore(nixos, inhibited);
  await setProfile(nixos, inhibited);
  for (const action of ["check", "test", "boot", "switch"]) {
    const result = await nixos.exec(`${inhibited}/bin/switch-to-configuration ${action}`);
    assert.equal(result.code, 1, `${action}: ${result.stderr}`);
    assert.match(result.stderr, /Pre-switch check 'testInhibitor' failed\nPre-switch checks failed/);
  }
  assert.equal((await nixos.run("readlink /run/current-system")).trim(), v1, "nothing activated");
  assert.equal((await nixos.run("cat /boot/default-system")).trim(), v1, "no bootloader entry");
  const skipped = await nixos.exec(`NIXOS_NO_CHECK=1 ${inhibited}/bin/switch-to-configuration test`);
  assert.equal(skipped.code, 0, skipped.stderr);
  assert.equal((await nixos.run("readlink /run/current-system")).trim(), inhibited);
  await setProfile(nixos, v1);
  await nixos.run(`${v1}/bin/switch-to-configuration switch`);
});

test("two activations never overlap: the second cannot take the lock (exit 11)", async () => {
  const holder = await nixos.exec(`sh -c 'echo $$ > /run/nixos/switch-to-configuration.lock.pid; exec sleep 5' & sleep 0.3; ${v1}/bin/switch-to-configuration test; code=$?; kill %1 2>/dev/null; exit $code`);
  assert.equal(holder.code, 11);
  assert.match(holder.stderr, /Could not acquire lock/);
  await nixos.run("rm -f /run/nixos/switch-to-configuration.lock.pid");
  assert.equal((await nixos.exec(`${v1}/bin/switch-to-configuration test`)).code, 0, "a stale lock of a dead process is taken over");
});

test("a new init-interface-version means reboot required: exit 100 after the bootloader, nothing activated", async () => {
  const changed = await buildTestSystem({ label: "dbl-init", variant: "init-changed" });
  await copyToHostStore(nixos, changed);
  await setProfile(nixos, changed);
  const result = await nixos.exec(`${changed}/bin/switch-to-configuration switch`);
  assert.equal(result.code, 100, result.stderr);
  assert.match(result.stderr, /won't take effect until you reboot/);
  assert.equal((await nixos.run("cat /boot/default-system")).trim(), changed, "the bootloader points at it");
  assert.equal((await nixos.run("readlink /run/current-system")).trim(), v1, "not activated");
  await setProfile(nixos, v1);
  await nixos.run(`${v1}/bin/switch-to-configuration boot`);
});

test("switch-to-configuration and the activation script find their tools without PATH", async () => {
  const v3 = await buildTestSystem({ label: "dbl-v3" });
  await copyToHostStore(nixos, v3);
  // A NixOS transient unit's PATH holds only systemd's own bin directory.
  const result = await nixos.exec(`env -i PATH=/nonexistent ${v3}/bin/switch-to-configuration test`);
  assert.equal(result.code, 0, result.stderr);
  assert.equal((await nixos.run("readlink /run/current-system")).trim(), v3);
  await nixos.run(`${v1}/bin/switch-to-configuration test`);
});

test("nixos-install refuses unknown options, a mount point others cannot traverse, and a missing system", async () => {
  assert.match((await installer.exec("nixos-install --bogus")).stdout, /unknown option/);
  await installer.run("mkdir -p /tmp/locked/mnt && chmod 700 /tmp/locked");
  const locked = await installer.exec(`nixos-install --root /tmp/locked/mnt --system ${v1}`);
  assert.equal(locked.code, 1);
  assert.match(locked.stdout, /should have permissions 755/);
  const noSystem = await installer.exec("nixos-install --root /mnt");
  assert.equal(noSystem.code, 1);
  assert.match(noSystem.stdout, /configuration file .* doesn't exist/);
  assert.equal((await installer.exec("nixos-enter --root /tmp/locked/mnt -- true")).code, 126, "nixos-enter refuses a root without /etc/NIXOS");
});

test("nixos-install sets the profile in the target store and installs the bootloader through nixos-enter's private namespace", async () => {
  await installer.run("mkfs.ext4 -q /dev/vda && mount /dev/vda /mnt && chmod 755 /mnt");
  const exported = await installer.exec(`nix-store -qR ${v1} | xargs nix-store --export | nix-store --store /mnt --import >/dev/null`);
  assert.equal(exported.code, 0, exported.stderr);
  const mountsBefore = await installer.run("cat /proc/self/mountinfo | wc -l");
  const result = await installer.exec(`${NIXOS_INSTALL} --root /mnt --system ${v1} --no-root-passwd --no-channel-copy`);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.equal((await installer.run("readlink -f /mnt/nix/var/nix/profiles/system")).trim(), v1);
  assert.equal((await installer.run("cat /mnt/boot/default-system")).trim(), v1, "the bootloader entry");
  assert.match(await installer.run("cat /mnt/boot/nixos-test-bootloader"), /installing the test bootloader/, "installed with NIXOS_INSTALL_BOOTLOADER=1");
  assert.match(await installer.run("cat /mnt/etc/os-release"), /ID=nixos/, "the activation script ran in the new root first");
  assert.equal(await installer.run("cat /proc/self/mountinfo | wc -l"), mountsBefore, "no mount of nixos-enter leaked into the caller's namespace");
  assert.ok(readFileSync("/proc/self/mountinfo", "utf8").split("\n").every((l) => !l.includes(installer.stateDir + "/mnt/dev")));
});

test("initrd secrets are appended by the bootloader from the installed system; a missing source fails the install", async () => {
  const withSecret = await buildTestSystem({ label: "dbl-secret", initrdSecrets: "/tmp/disk.key /etc/secrets/disk.key\n" });
  await copyToHostStore(installer, withSecret);
  const imported = await installer.exec(`nix-store -qR ${withSecret} | xargs nix-store --export | nix-store --store /mnt --import >/dev/null`);
  assert.equal(imported.code, 0, imported.stderr);
  // The key only in the installer's /tmp, as `install.diskKeys` leaves it: not in the new root.
  await installer.run("printf disk-key-1 > /tmp/disk.key && rm -rf /mnt/etc/secrets");
  const missing = await installer.exec(`${NIXOS_INSTALL} --root /mnt --system ${withSecret} --no-root-passwd --no-channel-copy`);
  assert.equal(missing.code, 1, missing.stdout + missing.stderr);
  assert.match(missing.stdout + missing.stderr, /failed to create initrd secrets!/);
  assert.notEqual((await installer.run("cat /mnt/boot/default-system")).trim(), withSecret, "no entry for a system whose initrd lacks its secrets");

  await installer.run("mkdir -p /mnt/etc/secrets && printf disk-key-1 > /mnt/etc/secrets/disk.key && chmod 600 /mnt/etc/secrets/disk.key");
  const ok = await installer.exec(`${NIXOS_INSTALL} --root /mnt --system ${withSecret} --no-root-passwd --no-channel-copy`);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const entry = await installer.run("cat /mnt/boot/loader/entries/nixos-default.conf");
  const initrd = entry.match(/^initrd (\S+)$/m)?.[1];
  assert.ok(initrd, entry);
  assert.match(entry, new RegExp(`^options init=${withSecret}/init$`, "m"));
  // The ESP's copy is the system's initrd followed by a gzipped cpio holding the key.
  const size = Number(await installer.run(`stat -L -c %s ${withSecret}/initrd`));
  const appended = await installer.run(`tail -c +${size + 1} /mnt/boot${initrd} | zcat | cpio -i --to-stdout "*tmp/disk.key" 2>/dev/null`);
  assert.equal(appended, "disk-key-1");
  assert.equal(await installer.run(`cmp -n ${size} ${withSecret}/initrd /mnt/boot${initrd} && echo same`), "same", "the system's own initrd first");
});

test("inside nixos-enter, nixos-install binds the new root at its mount point: /mnt/... paths a configuration names stay valid", async () => {
  // An initrd secret named by its path at install time (a configuration evaluated from /mnt/etc/nixos).
  const system = await buildTestSystem({ label: "dbl-mnt-secret", initrdSecrets: "/etc/nixos/initrd.key /mnt/etc/nixos/initrd.key\n" });
  await copyToHostStore(installer, system);
  const imported = await installer.exec(`nix-store -qR ${system} | xargs nix-store --export | nix-store --store /mnt --import >/dev/null`);
  assert.equal(imported.code, 0, imported.stderr);
  await installer.run("mkdir -p /mnt/etc/nixos && printf mnt-key > /mnt/etc/nixos/initrd.key");
  const mountsBefore = await installer.run("cat /proc/self/mountinfo | wc -l");
  const result = await installer.exec(`${NIXOS_INSTALL} --root /mnt --system ${system} --no-root-passwd --no-channel-copy`);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const initrd = (await installer.run("cat /mnt/boot/loader/entries/nixos-default.conf")).match(/^initrd (\S+)$/m)?.[1];
  const size = Number(await installer.run(`stat -L -c %s ${system}/initrd`));
  assert.equal(await installer.run(`tail -c +${size + 1} /mnt/boot${initrd} | zcat | cpio -i --to-stdout "*etc/nixos/initrd.key" 2>/dev/null`), "mnt-key");
  assert.equal(await installer.run("cat /proc/self/mountinfo | wc -l"), mountsBefore, "the bind mount ended with nixos-enter");
  assert.equal((await installer.exec("test -e /mnt/mnt/etc")).code, 1, "nothing was written through the bind");
});

/** The units of each list switch-to-configuration printed ("stopping the following units: a, b"). */
function printedJobs(stderr: string, verbs: Record<string, string>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [job, verb] of Object.entries(verbs)) {
    const line = stderr.split("\n").find((l) => l.startsWith(`${verb} the following units: `) || l.startsWith(`${verb} the following changed units: `));
    out[job] = line ? line.slice(line.indexOf(": ") + 2).split(", ") : [];
  }
  return out;
}
const SWITCH_VERBS = { stop: "stopping", skip: "NOT restarting", reload: "reloading", restart: "restarting", start: "starting" };
const shownJobs = (plan: UnitPlan) => {
  const shown = (s: Set<string>) => byName([...s].filter((u) => !plan.hidden.has(u)));
  return { stop: shown(plan.stop), skip: byName(plan.skip), reload: byName(plan.reload), restart: byName(plan.restart), start: shown(plan.start) };
};

test("the unit plan and what switch-to-configuration then does agree unit by unit; a unit not active on the host is left alone", async () => {
  const [a, b] = await Promise.all([
    buildTestSystem({ label: "plan-a", unitFiles: UNIT_SCENARIO.before }),
    buildTestSystem({ label: "plan-b", unitFiles: UNIT_SCENARIO.after }),
  ]);
  await copyToHostStore(nixos, a);
  await copyToHostStore(nixos, b);
  try {
    const first = await nixos.exec(`${a}/bin/switch-to-configuration test`);
    assert.equal(first.code, 0, first.stderr);
    const activeOnHost = new Set((await nixos.run("cat /run/systemd-double/active-units")).split("\n").filter(Boolean));
    assert.deepEqual(byName(activeOnHost), byName(bootUnits(a)), `after the switch, what the system starts at boot is active\n${first.stdout}${first.stderr}`);

    // dry-activate on the host says what the preview said without the host.
    const dry = await nixos.exec(`${b}/bin/switch-to-configuration dry-activate`);
    assert.equal(dry.code, 0, dry.stderr);
    const preview = unitPlanLines(a, b).filter((l) => l.startsWith("would "));
    assert.deepEqual(dry.stderr.split("\n").filter((l) => l.startsWith("would ")), preview);

    const result = await nixos.exec(`${b}/bin/switch-to-configuration test`);
    assert.equal(result.code, 0, result.stderr);
    const did = printedJobs(result.stderr, SWITCH_VERBS);
    assert.deepEqual(did, shownJobs(planUnits(a, b, bootUnits(a))), result.stderr);
    assert.deepEqual(did, { stop: UNIT_SCENARIO_JOBS.stop, skip: UNIT_SCENARIO_JOBS.skip, reload: UNIT_SCENARIO_JOBS.reload, restart: UNIT_SCENARIO_JOBS.restart, start: UNIT_SCENARIO_JOBS.start });
    assert.match(result.stderr, new RegExp(`the following new units were started: ${UNIT_SCENARIO_JOBS.newUnits.join(", ")}$`, "m"));
    const jobs = (await nixos.run("sed -n '/^switch /h; /^switch /!H; ${x;p}' /run/systemd-double/jobs")).trim().split("\n").slice(1);
    assert.ok(jobs.includes("stop old.service") && jobs.includes("reload db.service") && !jobs.some((j) => j.endsWith(" worker.service")), jobs.join("\n"));

    // Back to a, with api.service stopped by hand: the preview's boot-time estimate lists it,
    // the host leaves it alone, and the plan from the host's real active units agrees.
    await nixos.run("grep -vx api.service /run/systemd-double/active-units > /tmp/active && mv /tmp/active /run/systemd-double/active-units");
    const real = new Set((await nixos.run("cat /run/systemd-double/active-units")).split("\n").filter(Boolean));
    assert.ok(planUnits(b, a, bootUnits(b)).restart.has("api.service"));
    const back = await nixos.exec(`${a}/bin/switch-to-configuration test`);
    assert.equal(back.code, 0, back.stderr);
    const didBack = printedJobs(back.stderr, SWITCH_VERBS);
    assert.ok(!Object.values(didBack).flat().includes("api.service"), back.stderr);
    assert.deepEqual(didBack, shownJobs(planUnits(b, a, real)), back.stderr);
  } finally {
    await nixos.run(`${v1}/bin/switch-to-configuration test; rm -rf /run/systemd-double`);
  }
});
