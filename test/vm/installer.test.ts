// The test kexec installer against the contracts of nixos-images' kexec installer and of
// nixos-install / nixos-enter (test/fixtures/CONTRACTS.md, "installer"): what kexec/run
// carries over and refuses, the installer's SSH identity and os-release, the tools and
// drivers disk layouts need, and an install onto /mnt through nixos-install. One VM.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { createReadStream, readFileSync } from "node:fs";
import { connect, type SshSession } from "../../provider/ssh";
import { copyClosure } from "../../provider/copy";
import { connectionSchema } from "../../provider/schema/connection";
import { startVm, type TestVm } from "../harness/vm";
import { buildTestSystem } from "../harness/systems";
import { generateKeyPair, type KeyPair } from "../harness/keys";

let vm: TestVm;
let session: SshSession;
let alice: KeyPair;
let bob: KeyPair;

const open = (hostKey: string) =>
  connect(connectionSchema.parse({ host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey, dialErrorLimit: 60 }), {
    retryIntervalMs: 2000,
  });
async function run(command: string): Promise<string> {
  const r = await session.exec(command);
  assert.equal(r.code, 0, `${command} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}
async function unpack(tarball: string, dir: string): Promise<void> {
  await session.execOk(`rm -rf ${dir} && mkdir -p ${dir} && tar -C ${dir} -xzf -`, "test: unpack", { stdin: createReadStream(tarball) });
}

before(async () => {
  [alice, bob] = await Promise.all([generateKeyPair("alice@deployer"), generateKeyPair("bob@elsewhere")]);
  vm = await startVm();
  await vm.waitForSsh(120_000);
  session = await open(vm.images.rescueHostKey);
});

after(async (t) => {
  t.diagnostic(`console (tail):\n${vm?.consoleText().slice(-2500)}`);
  session?.close();
  await vm?.stop();
});

test("kexec/run exits non-zero with its log when kexec --load fails; the machine stays in the rescue system", async () => {
  const bootId = await run("cat /proc/sys/kernel/random/boot_id");
  await unpack(vm.images.brokenKexecTarball, "/root/broken");
  const r = await session.exec("setsid --wait /root/broken/kexec/run");
  assert.notEqual(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /kexec failed, dumping dmesg/);
  assert.doesNotMatch(r.stdout + r.stderr, /machine will boot into nixos/);
  assert.match(r.stderr, /\+ .*kexec.* --load/, "the log traces each step (set -x), as upstream's");
  await new Promise((r) => setTimeout(r, 8000));
  assert.equal(await run("cat /proc/sys/kernel/random/boot_id"), bootId, "no kexec happened");
  assert.match(await run("cat /etc/os-release"), /^ID=debian$/m);
});

test("kexec/run carries only root's and $SUDO_USER's authorized keys and the host keys; the installer keeps the rescue host key on port 22", async () => {
  const bootId = await run("cat /proc/sys/kernel/random/boot_id");
  // alice is the sudo user who runs kexec/run; bob is another user; root has a private key
  // and a non-key line in authorized_keys: none of that may reach the installer.
  await run(
    [
      "echo 'alice:x:1000:1000::/home/alice:/bin/sh' >> /etc/passwd",
      "echo 'bob:x:1001:1001::/home/bob:/bin/sh' >> /etc/passwd",
      `mkdir -p /home/alice/.ssh /home/bob/.ssh && echo '${alice.publicKey}' > /home/alice/.ssh/authorized_keys && echo '${bob.publicKey}' > /home/bob/.ssh/authorized_keys`,
      "echo '# a comment, no key' >> /root/.ssh/authorized_keys",
      `cp /etc/ssh/ssh_host_ed25519_key /root/.ssh/id_ed25519`,
    ].join(" && "),
  );
  await unpack(vm.images.kexecTarball, "/root/kexec");
  const r = await session.exec("SUDO_USER=alice setsid --wait /root/kexec/kexec/run");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /machine will boot into nixos in 6s\.\.\./);
  assert.equal(await run("echo still up"), "still up", "kexec/run returns before the kexec (upstream: after 6 s)");
  session.close();

  // The installer answers with the rescue system's host key, pinned: a different key fails.
  await vm.waitForConsole(/nixos-pulumi installer starting/, 120_000);
  session = await open(vm.images.rescueHostKey);
  assert.notEqual(await run("cat /proc/sys/kernel/random/boot_id"), bootId, "a new kernel runs");
  const osRelease = await run("cat /etc/os-release");
  assert.match(osRelease, /^ID=nixos$/m);
  assert.match(osRelease, /^VARIANT_ID=installer$/m);
  const keys = (await run("cat /root/.ssh/authorized_keys")).split("\n").map((l) => l.split(" ").slice(0, 2).join(" "));
  assert.deepEqual(keys.sort(), [vm.images.clientPublicKey, alice.publicKey.split(" ").slice(0, 2).join(" ")].sort());
  assert.equal(await run("stat -c %a /root/.ssh/authorized_keys"), "400");
  assert.equal(await run("ls /root/.ssh"), "authorized_keys", "nothing else of root's .ssh is carried");
  assert.equal(
    await run("ls /etc/ssh | grep ssh_host_ | tr '\\n' ' '"),
    "ssh_host_ecdsa_key ssh_host_ecdsa_key.pub ssh_host_ed25519_key ssh_host_ed25519_key.pub ssh_host_rsa_key ssh_host_rsa_key.pub",
    "every host key file of the rescue system is carried",
  );
  assert.equal(await run("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub"), vm.images.rescueHostKey);
  // NixOS's sshd serves only the services.openssh.hostKeys types (RSA, ed25519): the carried
  // ECDSA key is not served, so a connection pinned to it fails.
  assert.equal(await run("grep ^HostKey /etc/ssh/sshd_config | tr '\\n' ' '"), "HostKey /etc/ssh/ssh_host_rsa_key HostKey /etc/ssh/ssh_host_ed25519_key");
  await assert.rejects(
    connect(connectionSchema.parse({ host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey: vm.images.rescueEcdsaHostKey, dialErrorLimit: 1 })),
    "the installer serves no ECDSA host key",
  );
  assert.match(vm.consoleText(), /kexec_core: Starting new kernel/);
});

test("the installer has what nixos-anywhere checks and the disk tools of nixos-images' noninteractive image (no cryptsetup), and the drivers LUKS, LVM, xfs, btrfs and swap layouts need", async () => {
  assert.equal(await run("for t in tar cpio flock nix-store nixos-install nixos-enter unshare chroot sgdisk partx wipefs blkid lsblk lvm pvcreate vgcreate lvcreate dmsetup mkfs.ext4 mkfs.vfat mkfs.xfs mkfs.btrfs mkswap swapon; do command -v $t >/dev/null || echo missing $t; done; setsid --wait true && echo ok"), "ok");
  assert.notEqual((await session.exec("command -v cryptsetup")).code, 0, "noninteractive.nix drops profiles/base.nix, and with it cryptsetup");
  // dm-crypt through dmsetup (lvm2's): the kernel's crypt target, which cryptsetup drives.
  const out = await run(
    [
      "set -e",
      "export DM_DISABLE_UDEV=1",
      `dmsetup create crypted --table "0 $(( $(blockdev --getsz /dev/vda) )) crypt aes-xts-plain64 ${"ab".repeat(32)} 0 /dev/vda 0"`,
      "pvcreate -q /dev/mapper/crypted && vgcreate -q pool /dev/mapper/crypted",
      "lvcreate -q -y -L 300M -n root pool && lvcreate -q -y -L 300M -n data pool && lvcreate -q -y -L 64M -n swap pool",
      "mkfs.xfs -q /dev/pool/root && mkfs.btrfs -q /dev/pool/data && mkswap /dev/pool/swap >/dev/null",
      "mkdir -p /t && mount /dev/pool/root /t && umount /t && mount /dev/pool/data /t && umount /t && swapon /dev/pool/swap && swapoff /dev/pool/swap",
      "vgchange -q -an pool && dmsetup table crypted | grep -q ' crypt aes-xts-plain64 ' && dmsetup remove crypted",
      "echo crypt-lvm-ok",
    ].join("\n"),
  );
  assert.match(out, /crypt-lvm-ok$/);
});

test("nixos-install refuses what upstream refuses, installs a store path and leaves the installer's mounts alone", async () => {
  const images = vm.images;
  const system = await buildTestSystem({ label: "vm-installer-target", kernelFile: images.kernel, initrdFile: images.stage1Initrd, vmRuntime: images.runtime, fstab: "/dev/vda / ext4 defaults 0 1\n" });
  await run("wipefs -a -q /dev/vda && mkfs.ext4 -q -F /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt");
  const refused = async (command: string, code: number, message: RegExp) => {
    const r = await session.exec(command);
    assert.equal(r.code, code, `${command}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, message);
  };
  await refused("nixos-install --root /mnt --system /nix/store/x --no-root-passwd --frobnicate", 1, /unknown option `--frobnicate'/);
  await refused("nixos-install --root /mnt --no-root-passwd --no-channel-copy", 1, /configuration file \/mnt\/etc\/nixos\/configuration.nix doesn't exist/);
  await refused("nixos-enter --root /mnt -c true", 126, /'\/mnt' is not a NixOS installation/);
  await refused("nixos-enter --root /mnt --bogus", 1, /unknown option `--bogus'/);
  await refused("chmod 0750 /mnt && nixos-install --root /mnt --system /nix/store/x --no-root-passwd; s=$?; chmod 0755 /mnt; exit $s", 1, /path \/mnt should have permissions 755/);
  await refused(`nixos-install --root /mnt --system ${system} --no-root-passwd --no-channel-copy`, 1, /error/);

  const mountsBefore = await run("cut -d' ' -f5 /proc/self/mountinfo | sort");
  await copyClosure(session, system, { storeRoot: "/mnt" });
  // A NixOS installer's PATH has /run/current-system/sw/bin, where nixos-install's command
  // inside nixos-enter finds `mount`; this image's is Debian's: add it, as nixos-anywhere does.
  const out = await run(`PATH="$PATH:/run/current-system/sw/bin" nixos-install --root /mnt --system ${system} --no-root-passwd --no-channel-copy 2>&1`);
  assert.match(out, /installing the boot loader\.\.\./);
  assert.match(out, /installation finished!$/);
  // Links as nixos-install leaves them: system -> system-1-link -> the store path (in /mnt's store).
  assert.equal(await run("readlink /mnt/nix/var/nix/profiles/$(readlink /mnt/nix/var/nix/profiles/system)"), system);
  assert.equal(await run("test -e /mnt/etc/NIXOS && readlink /mnt/etc/mtab"), "/proc/mounts");
  assert.equal(await run("cat /mnt/etc/nixos-test-release"), "vm-installer-target", "the activation script ran in the new root");
  assert.equal(await run("cat /mnt/boot/default-system"), system, "switch-to-configuration boot installed the boot loader");
  assert.equal(await run("test -e /mnt/boot/nixos-test-bootloader && echo first-install"), "first-install", "with NIXOS_INSTALL_BOOTLOADER=1");
  assert.equal(await run("cut -d' ' -f5 /proc/self/mountinfo | sort"), mountsBefore, "no mount of nixos-enter outlives it");
  assert.equal(await run("readlink /run/current-system 2>/dev/null || echo none"), "none", "the installer's own /run is untouched");
  await run("umount /mnt");
});
