// Tier-2 test machines: QEMU (software emulation) booting the test images of
// scripts/build-vm-images.sh, one raw virtual disk, user networking with SSH forwarded to a
// loopback port only (restrict=on: the guest reaches nothing else), the serial console in a
// log file. Every VM is recorded for the sweeper and stopped by the pid we started.
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { execa } from "execa";
import { currentRunDir, record, requireRoot } from "./run-dir";

const ROOT = path.resolve(__dirname, "../../..");

export interface VmImages {
  dir: string;
  kernel: string;
  rescueInitrd: string;
  /** kexec tarball in nixos-images' format (kexec/run, bzImage, initrd, kexec). */
  kexecTarball: string;
  /** The same tarball with a kernel image `kexec --load` refuses. */
  brokenKexecTarball: string;
  stage1Initrd: string;
  /** The installed test system's userland: pass as vmRuntime to buildTestSystem. */
  runtime: string;
  /** cryptsetup as a package of its own: pass as cryptsetup to buildTestSystem (systems with LUKS devices). */
  cryptsetup: string;
  clientPrivateKey: string;
  clientPublicKey: string;
  /** The rescue system's ed25519 host key; the kexec installer serves the same one. */
  rescueHostKey: string;
  /** The rescue system's ECDSA host key: carried into the installer, which does not serve it (NixOS's sshd: RSA and ed25519). */
  rescueEcdsaHostKey: string;
}

let images: Promise<VmImages> | undefined;

/** Builds (or finds in the cache) the VM images. */
export function vmImages(): Promise<VmImages> {
  images ??= execa("bash", [path.join(ROOT, "scripts/build-vm-images.sh")]).then(({ stdout }) => {
    const dir = stdout.trim().split("\n").pop()!;
    const pub = (name: string) => readFileSync(path.join(dir, `${name}.pub`), "utf8").trim().split(" ").slice(0, 2).join(" ");
    return {
      dir,
      kernel: path.join(dir, "bzImage"),
      rescueInitrd: path.join(dir, "rescue.cpio.gz"),
      kexecTarball: path.join(dir, "nixos-kexec-installer-test.tar.gz"),
      brokenKexecTarball: path.join(dir, "nixos-kexec-installer-broken-test.tar.gz"),
      stage1Initrd: path.join(dir, "stage1.cpio.gz"),
      runtime: path.join(dir, "runtime"),
      cryptsetup: path.join(dir, "cryptsetup"),
      clientPrivateKey: readFileSync(path.join(dir, "client_ed25519"), "utf8"),
      clientPublicKey: pub("client_ed25519"),
      rescueHostKey: pub("rescue_host_ed25519"),
      rescueEcdsaHostKey: pub("rescue_host_ecdsa"),
    };
  });
  return images;
}

/** A free TCP port on 127.0.0.1 (for QEMU's loopback-only forwards). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Boot {
  kernel: string;
  initrd: string;
  append: string;
}

export interface TestVm {
  address: "127.0.0.1";
  sshPort: number;
  images: VmImages;
  disk: string;
  consoleLog: string;
  consoleText(): string;
  waitForConsole(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** Runs a command over the OpenSSH client with the test key (host key not checked: test plumbing). */
  ssh(command: string): Promise<{ stdout: string; code: number }>;
  waitForSsh(timeoutMs: number): Promise<void>;
  /** Powers the VM on again (same disk), e.g. after a guest reboot or kill(). */
  boot(how: Boot): Promise<void>;
  /** Where a guest reboot boots from: the installed disk, found like a bootloader would. */
  bootFromDisk(): Promise<Boot>;
  /** Number of times the VM was powered on. */
  boots(): number;
  /** Hard power-off, like pulling the plug. */
  kill(): Promise<void>;
  running(): boolean;
  stop(): Promise<void>;
}

export interface VmOptions {
  diskSizeMiB?: number;
  /** More empty raw disks, /dev/vdb, /dev/vdc, … in the guest (sizes in MiB). */
  extraDisksMiB?: number[];
  memoryMiB?: number;
  /**
   * What the VM boots first: the rescue system (default), or a NixOS test system written
   * straight onto its disk (as an install would leave it) and booted from there.
   */
  installed?: InstalledDisk;
}

/**
 * The root filesystem of a disk written by `installed` (one ext4 partition labelled
 * disk-main-root), as /etc/fstab lines: a system booted from it must declare it.
 */
export const INSTALLED_ROOT_FSTAB = "/dev/disk/by-partlabel/disk-main-root / ext4 defaults 0 1\n";

/** An installed system written onto the disk by the harness (no kexec, no installer). */
export interface InstalledDisk {
  toplevel: string;
  /** The installed host key (ed25519, OpenSSH private key and "ssh-ed25519 AAAA..." public key). */
  hostKey: { privateKey: string; publicKey: string };
}

export async function startVm(options: VmOptions = {}): Promise<TestVm> {
  requireRoot();
  const imgs = await vmImages();
  const dir = path.join(currentRunDir(), `vm-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const disk = path.join(dir, "vda.img");
  await execa("truncate", ["-s", `${options.diskSizeMiB ?? 2048}M`, disk]);
  const extraDisks = (options.extraDisksMiB ?? []).map((_, i) => path.join(dir, `vd${String.fromCharCode(98 + i)}.img`));
  for (const [i, file] of extraDisks.entries()) await execa("truncate", ["-s", `${options.extraDisksMiB![i]}M`, file]);
  const sshPort = await freePort();
  const consoleLog = path.join(dir, "console.log");
  let child: ChildProcess | undefined;
  let consoleBefore = "";
  let stopping = false;
  let bootCount = 0;

  const vm: TestVm = {
    address: "127.0.0.1",
    sshPort,
    images: imgs,
    disk,
    consoleLog,
    consoleText: () => {
      try {
        return consoleBefore + readFileSync(consoleLog, "utf8");
      } catch {
        return consoleBefore;
      }
    },
    async waitForConsole(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (pattern.test(vm.consoleText())) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`console did not show ${pattern} within ${timeoutMs / 1000}s:\n${vm.consoleText().slice(-3000)}`);
    },
    async ssh(command) {
      const keyFile = path.join(dir, "client_ed25519");
      await execa("install", ["-m", "0600", path.join(imgs.dir, "client_ed25519"), keyFile]);
      const r = await execa(
        "ssh",
        ["-i", keyFile, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-p", String(sshPort), "root@127.0.0.1", command],
        { reject: false },
      );
      return { stdout: String(r.stdout), code: r.exitCode ?? -1 };
    },
    async waitForSsh(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if ((await vm.ssh("true")).code === 0) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
      throw new Error(`SSH did not come up within ${timeoutMs / 1000}s:\n${vm.consoleText().slice(-3000)}`);
    },
    async boot(how) {
      if (vm.running()) throw new Error("the VM is already running");
      stopping = false;
      consoleBefore = vm.consoleText();
      child = spawn(
        "qemu-system-x86_64",
        [
          "-accel", "tcg", "-m", String(options.memoryMiB ?? 1536), "-smp", "1", "-no-reboot",
          "-kernel", how.kernel, "-initrd", how.initrd, "-append", how.append,
          "-drive", `file=${disk},format=raw,if=virtio`,
          ...extraDisks.flatMap((file) => ["-drive", `file=${file},format=raw,if=virtio`]),
          "-netdev", `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
          "-device", "virtio-net-pci,netdev=n0",
          "-serial", `file:${consoleLog}`, "-monitor", "none", "-display", "none",
        ],
        { stdio: "ignore" },
      );
      record(`vm ${child.pid}`);
      bootCount++;
      // -no-reboot makes a guest reboot end QEMU (exit 0); power it on again from its disk,
      // as the firmware and bootloader of a real machine would.
      child.once("exit", (code) => {
        if (code !== 0 || stopping) return;
        vm.bootFromDisk()
          .then((how) => {
            appendFileSync(consoleLog, `\n[harness] guest rebooted; booting from disk: ${how.append}\n`);
            return vm.boot(how);
          })
          .catch((err) => appendFileSync(consoleLog, `\n[harness] could not boot from disk: ${(err as Error).message}\n`));
      });
    },
    async bootFromDisk() {
      return readBootEntry(disk, dir);
    },
    boots: () => bootCount,
    async kill() {
      stopping = true;
      if (child && vm.running()) {
        child.kill("SIGKILL");
        await new Promise((r) => child!.once("exit", r));
      }
    },
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    async stop() {
      await vm.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (options.installed) {
    await writeInstalledDisk(disk, dir, options.installed, imgs.clientPublicKey);
    // Booted as the bootloader would (readBootEntry), from the host's copy of the same
    // system: the loop device just detached may still be busy for a second mount.
    const { toplevel } = options.installed;
    await vm.boot({ kernel: realpathSync(`${toplevel}/kernel`), initrd: realpathSync(`${toplevel}/initrd`), append: `console=ttyS0 panic=10 init=${toplevel}/init` });
  } else {
    await vm.boot({ kernel: imgs.kernel, initrd: imgs.rescueInitrd, append: "console=ttyS0 panic=10" });
  }
  return vm;
}

/**
 * Writes what an install leaves on a disk, from the host: a GPT with one ext4 partition
 * labelled disk-main-root, the system's closure in its Nix store, the system profile,
 * /etc/NIXOS, the host key, root's authorized key and the test boot loader. The kernel here parses no partition
 * tables: the filesystem is made and mounted at the partition's offset in the image.
 */
async function writeInstalledDisk(disk: string, dir: string, installed: InstalledDisk, authorizedKey: string): Promise<void> {
  await execa("sgdisk", ["-Z", "-n", "1:2048:0", "-t", "1:8300", "-c", "1:disk-main-root", disk]);
  const { stdout: table } = await execa("partx", ["-g", "-o", "START,SECTORS", "-n", "1", disk]);
  const [start, sectors] = table.trim().split(/\s+/).map(Number) as [number, number];
  await execa("mkfs.ext4", ["-q", "-F", "-E", `offset=${start * 512}`, disk, `${Math.floor((sectors * 512) / 1024)}k`]);
  const mnt = path.join(dir, "install-root");
  mkdirSync(mnt, { recursive: true });
  const loop = (await execa("losetup", ["--find", "--show", "--offset", String(start * 512), "--sizelimit", String(sectors * 512), disk])).stdout.trim();
  record(`loop ${loop} ${disk}`);
  try {
    await execa("mount", [loop, mnt]);
  } catch (err) {
    await execa("losetup", ["-d", loop]);
    throw err;
  }
  try {
    await execa("nix", ["--extra-experimental-features", "nix-command", "copy", "--no-check-sigs", "--to", mnt, installed.toplevel]);
    await execa("nix-env", ["--store", mnt, "-p", `${mnt}/nix/var/nix/profiles/system`, "--set", installed.toplevel]);
    mkdirSync(`${mnt}/etc/ssh`, { recursive: true });
    mkdirSync(`${mnt}/root/.ssh`, { recursive: true, mode: 0o700 });
    await execa("touch", [`${mnt}/etc/NIXOS`]);
    writeFileSync(`${mnt}/etc/ssh/ssh_host_ed25519_key`, installed.hostKey.privateKey.replace(/\n?$/, "\n"), { mode: 0o600 });
    writeFileSync(`${mnt}/etc/ssh/ssh_host_ed25519_key.pub`, installed.hostKey.publicKey.trim() + "\n", { mode: 0o644 });
    writeFileSync(`${mnt}/root/.ssh/authorized_keys`, authorizedKey + "\n", { mode: 0o600 });
    // The boot loader an install leaves (what the test systems' switch-to-configuration
    // writes with NIXOS_INSTALL_BOOTLOADER=1): later switches find it installed.
    const kernel = realpathSync(`${installed.toplevel}/kernel`);
    const kernelEfi = `EFI/nixos/${path.basename(path.dirname(kernel))}-${path.basename(kernel)}.efi`;
    const initrdEfi = `EFI/nixos/${path.basename(installed.toplevel)}-initrd.efi`;
    mkdirSync(`${mnt}/boot/EFI/nixos`, { recursive: true });
    mkdirSync(`${mnt}/boot/loader/entries`, { recursive: true });
    copyFileSync(kernel, `${mnt}/boot/${kernelEfi}`);
    copyFileSync(`${installed.toplevel}/initrd`, `${mnt}/boot/${initrdEfi}`);
    writeFileSync(`${mnt}/boot/loader/entries/nixos-default.conf`, `title NixOS\nlinux /${kernelEfi}\ninitrd /${initrdEfi}\noptions init=${installed.toplevel}/init\n`);
    writeFileSync(`${mnt}/boot/nixos-test-bootloader`, "installing the test bootloader\n");
    writeFileSync(`${mnt}/boot/default-system`, `${installed.toplevel}\n`);
  } finally {
    await execa("umount", [mnt]);
    await execa("losetup", ["-d", loop]);
  }
}

const ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

/**
 * The firmware and bootloader stand-in: reads the default entry that the test systems'
 * bootloader (switch-to-configuration, as systemd-boot) wrote to the disk — from the EFI
 * system partition when there is one (vfat, read with mtools: this machine's kernel has no
 * vfat), else from /boot on the root partition — and copies out its kernel and initrd. The
 * command line is the entry's options (init=…): stage 1 finds its root filesystem itself.
 */
export async function readBootEntry(disk: string, dir: string, rootLabel = "disk-main-root"): Promise<Boot> {
  // The partition table is read from the image itself (no udev, no kernel partition scan).
  const { stdout: table } = await execa("partx", ["-g", "-o", "START,SECTORS,TYPE,NAME", disk]);
  const rows = table.split("\n").map((l) => l.trim().split(/\s+/));
  const esp = rows.find((cols) => cols[2] === ESP_TYPE);
  const stamp = Date.now();
  if (esp) {
    const image = `${disk}@@${Number(esp[0]) * 512}`;
    const env = { MTOOLS_SKIP_CHECK: "1" };
    const read = async (file: string) => (await execa("mtype", ["-i", image, `::/${file}`], { env })).stdout;
    const copy = (file: string, to: string) => execa("mcopy", ["-n", "-i", image, `::/${file}`, to], { env });
    return bootFrom(read, copy, dir, stamp);
  }
  const root = rows.find((cols) => cols[3] === rootLabel);
  if (!root) throw new Error(`no EFI system partition and no partition labelled ${rootLabel} on the disk:\n${table}`);
  const mnt = path.join(dir, "boot-read");
  mkdirSync(mnt, { recursive: true });
  await execa("mount", ["-o", `ro,noload,offset=${Number(root[0]) * 512},sizelimit=${Number(root[1]) * 512}`, disk, mnt]);
  try {
    const inBoot = (file: string) => path.join(mnt, "boot", file);
    return await bootFrom(async (file) => readFileSync(inBoot(file), "utf8"), (file, to) => execa("cp", [inBoot(file), to]), dir, stamp);
  } finally {
    await execa("umount", [mnt]);
  }
}

async function bootFrom(read: (file: string) => Promise<string>, copy: (file: string, to: string) => Promise<unknown>, dir: string, stamp: number): Promise<Boot> {
  const entry = await read("loader/entries/nixos-default.conf").catch(() => {
    throw new Error("no default boot entry (loader/entries/nixos-default.conf) on the disk: the bootloader was never installed");
  });
  const field = (name: string) => {
    const value = entry.match(new RegExp(`^${name} +(.+)$`, "m"))?.[1]?.trim();
    if (!value) throw new Error(`the boot entry has no ${name}:\n${entry}`);
    return value;
  };
  const kernel = path.join(dir, `kernel-${stamp}`);
  const initrd = path.join(dir, `initrd-${stamp}`);
  await copy(field("linux").replace(/^\//, ""), kernel);
  await copy(field("initrd").replace(/^\//, ""), initrd);
  return { kernel, initrd, append: `console=ttyS0 panic=10 ${field("options")}` };
}
