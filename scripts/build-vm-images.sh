#!/usr/bin/env bash
# Builds the QEMU test images from Debian's packages into a cache outside the clone, keyed
# by a hash of the inputs (this script, the image files, the kernel, the package versions):
#   rescue.cpio.gz   a RAM "rescue" system (busybox, sshd, tar, cpio, util-linux setsid; no
#                    kexec: the tarball brings its own, as nixos-images' does)
#   nixos-kexec-installer-test.tar.gz         kexec/{run,bzImage,initrd,kexec} in the format
#                    of nixos-images' kexec installer (see test/fixtures/CONTRACTS.md)
#   nixos-kexec-installer-broken-test.tar.gz  the same whose `kexec --load` fails
#   stage1.cpio.gz   stage 1 of the installed test system (opens LUKS, activates LVM,
#                    mounts the system's "/", runs init=)
#   cryptsetup/      cryptsetup as a store path of its own (bin/cryptsetup, with its loader
#                    and libraries), for the test systems with LUKS devices
#   runtime/         the userland of the installed test system: Debian's systemd (PID 1),
#                    sshd, D-Bus, Nix, busybox, bash as /bin/sh; systemd/bin holds systemd's
#                    own binaries only (the PATH of a transient unit on NixOS)
# Prints the image directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${NIXOS_PULUMI_CACHE:-/var/cache/nixos-pulumi}/vm-images"
KVER="$(ls /lib/modules | sort -V | tail -1)"
KERNEL="/boot/vmlinuz-$KVER"
PACKAGES=(openssh-server openssh-client nix-bin busybox-static kexec-tools gdisk systemd dbus-daemon util-linux cryptsetup-bin lvm2 dmsetup xfsprogs btrfs-progs dosfstools e2fsprogs)
key="$( (cat "$0" $(find "$ROOT/test/vm/image" "$ROOT/test/fixtures/installer-tools" -type f | sort); echo "$KVER"; dpkg-query -W "${PACKAGES[@]}") | sha256sum | cut -c1-16)"
OUT="$CACHE/$key"
mkdir -p "$CACHE"
# One builder per set at a time (several checkouts and test processes share the cache).
exec 9>"$CACHE/.lock-$key"; flock 9
if [ -f "$OUT/ready" ]; then touch "$OUT"; echo "$OUT"; exit 0; fi
# Sets of other inputs unused for two days are dropped (several checkouts may share the cache).
find "$CACHE" -mindepth 1 -maxdepth 1 ! -name "$key" ! -name ".lock-*" -mtime +2 -exec rm -rf {} +
rm -rf "$OUT.partial" && mkdir -p "$OUT.partial"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
IMG="$ROOT/test/vm/image"

add_bin() { # root binary...: copies binaries and the shared libraries they load
  local root=$1; shift
  for b in "$@"; do
    cp --parents -L "$b" "$root"
    for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*' || true); do cp --parents -L "$lib" "$root"; done
  done
}

add_modules() { # root module...: kernel modules and their dependencies, in load order
  local root=$1; shift
  mkdir -p "$root/modules"; touch "$root/modules/order"
  for m in "$@"; do
    modprobe --show-depends -S "$KVER" "$m" | awk '/^insmod/ {print $2}' | while read -r ko; do
      name=$(basename "$ko")
      grep -qx "$name" "$root/modules/order" && continue
      cp "$ko" "$root/modules/$name"; echo "$name" >> "$root/modules/order"
    done
  done
}

base_root() { # root hostname marker: busybox, sshd, the block/net/filesystem drivers
  local root=$1
  mkdir -p "$root"/{bin,etc/ssh,root/.ssh,proc,sys,dev,run,tmp,mnt}
  cp /bin/busybox "$root/bin/busybox"
  # root's shell is bash, as on Debian and NixOS: busybox's sh runs its own applets before
  # PATH, so `setsid --wait` would find busybox's setsid (no --wait) instead of util-linux's.
  add_bin "$root" /bin/bash /usr/sbin/sshd /usr/bin/cpio /usr/bin/setsid /usr/bin/nohup
  ln -s bash "$root/bin/sh"
  # What PID 1 does on `reboot` (SIGTERM), as the systems they stand in for.
  install -m 0644 "$IMG/pid1-reboot.sh" "$root/pid1-reboot.sh"
  add_modules "$root" virtio_pci virtio_blk virtio_net ext4 vfat nls_cp437 nls_ascii
  echo "$2" > "$root/etc/hostname"
  echo "$3" > "$root/etc/marker"
  printf 'root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  printf 'root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
  chmod 600 "$root/etc/shadow"
  printf 'PermitRootLogin prohibit-password\nUsePAM no\nUseDNS no\nAuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2\nSubsystem sftp internal-sftp\n' > "$root/etc/ssh/sshd_config"
}

pack() { (cd "$1" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$2"; }

ssh-keygen -q -t ed25519 -N "" -C test-vm-client -f "$OUT.partial/client_ed25519"
# The rescue system's host keys: the three types Debian's openssh-server makes (ssh-keygen -A).
for t in rsa ecdsa ed25519; do ssh-keygen -q -t "$t" -N "" -C rescue-host -f "$OUT.partial/rescue_host_$t"; done
cp "$KERNEL" "$OUT.partial/bzImage"

# The rescue system: what a cloud provider's rescue mode boots, from RAM (a Debian-like
# system: sshd with its own host key, root's authorized key; tar, cpio, setsid --wait).
r="$work/rescue"
base_root "$r" rescue "nixos-pulumi rescue system starting"
install -m 0755 "$IMG/rescue-init.sh" "$r/init"
# util-linux flock, as on every Debian (util-linux is essential): the deploy lock holds it.
add_bin "$r" /usr/bin/flock
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm) rescue"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' > "$r/etc/os-release"
for t in rsa ecdsa ed25519; do
  cp "$OUT.partial/rescue_host_$t" "$r/etc/ssh/ssh_host_${t}_key"
  cp "$OUT.partial/rescue_host_$t.pub" "$r/etc/ssh/ssh_host_${t}_key.pub"
  printf 'HostKey /etc/ssh/ssh_host_%s_key\n' "$t" >> "$r/etc/ssh/sshd_config"
done
cp "$OUT.partial/client_ed25519.pub" "$r/root/.ssh/authorized_keys"
pack "$r" "$OUT.partial/rescue.cpio.gz"

# The installer: a NixOS installer stand-in in RAM (os-release ID=nixos VARIANT_ID=installer),
# Nix, nixos-install/nixos-enter doubles, the disk tools nixos-images' noninteractive image
# carries (no cryptsetup: see test/fixtures/CONTRACTS.md) and the device-mapper drivers. No
# host key and no authorized keys of its own: it takes those kexec/run carried over
# (test/vm/image/installer-init.sh).
i="$work/installer"
base_root "$i" nixos-installer "nixos-pulumi installer starting"
install -m 0755 "$IMG/installer-init.sh" "$i/init"
printf 'ANSI_COLOR="1;34"\nID=nixos\nNAME=NixOS\nPRETTY_NAME="NixOS 25.11 (Xantusia)"\nVARIANT="Installer"\nVARIANT_ID=installer\nVERSION_ID="25.11"\n' > "$i/etc/os-release"
: > "$i/etc/NIXOS"
# flock: util-linux is on every NixOS system path, the installer's too (system-path.nix).
add_bin "$i" /usr/bin/nix /usr/bin/flock /usr/bin/ssh-keygen /usr/sbin/sgdisk /usr/sbin/mke2fs /usr/sbin/mkfs.fat /usr/bin/partx /usr/sbin/blkid \
  /usr/bin/mount /usr/bin/umount /usr/bin/findmnt /usr/bin/mountpoint /usr/sbin/blockdev /usr/bin/stat /usr/bin/xargs \
  /usr/bin/unshare /usr/sbin/chroot /usr/sbin/wipefs /usr/sbin/mkswap /usr/sbin/swapon /usr/sbin/swapoff \
  /usr/sbin/lvm /usr/sbin/dmsetup /usr/sbin/mkfs.xfs /usr/sbin/mkfs.btrfs /usr/bin/lsblk
for n in nix-store nix-env nix-instantiate nix-build nix-collect-garbage; do ln -s nix "$i/usr/bin/$n"; done
ln -s mke2fs "$i/usr/sbin/mkfs.ext4"; ln -s mkfs.fat "$i/usr/sbin/mkfs.vfat"
for n in pvcreate pvs pvscan vgcreate vgchange vgs vgscan lvcreate lvs lvscan lvchange pvremove vgremove lvremove; do ln -s lvm "$i/usr/sbin/$n"; done
install -m 0755 "$ROOT/test/fixtures/installer-tools/nixos-install" "$i/usr/bin/nixos-install"
install -m 0755 "$ROOT/test/fixtures/installer-tools/nixos-enter" "$i/usr/bin/nixos-enter"
add_modules "$i" dm_mod dm_crypt dm_snapshot xts aes_generic sha256_generic sha512_generic algif_skcipher algif_hash xfs btrfs
mkdir -p "$i/etc/lvm" "$i/etc/nix" "$i/nix/store" "$i/nix/var/nix"
# No udev in this installer: device-mapper nodes are made by the tools themselves.
printf 'devices {\n obtain_device_list_from_udev = 0\n}\nactivation {\n udev_sync = 0\n udev_rules = 0\n}\n' > "$i/etc/lvm/lvm.conf"
printf 'build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n' > "$i/etc/nix/nix.conf"
pack "$i" "$work/installer.cpio.gz"

# cryptsetup as a package of its own (nixpkgs' cryptsetup): a system with LUKS devices has it
# on its path (luksroot.nix), the test systems link this one (test/fixtures/system.nix).
# Its own loader and libraries: it runs wherever its store path is, the installer included.
c="$OUT.partial/cryptsetup"
mkdir -p "$c/bin" "$c/lib"
cp -L /usr/sbin/cryptsetup "$c/lib/cryptsetup"
for lib in $(ldd /usr/sbin/cryptsetup | grep -o '/[^ ]*'); do cp -L "$lib" "$c/lib/"; done
printf '#!/bin/sh\nd=$(dirname "$(dirname "$(readlink -f "$0")")")\nexec "$d/lib/ld-linux-x86-64.so.2" --library-path "$d/lib" "$d/lib/cryptsetup" "$@"\n' > "$c/bin/cryptsetup"
chmod 0755 "$c/bin/cryptsetup"

# Stage 1 of the installed test system: drivers, LUKS and LVM (as NixOS's stage 1 carries
# cryptsetup, lvm and dmsetup), mount the system's "/", switch_root to init=. The system's
# own stage-1 configuration is appended to this image per system (test/fixtures/system.nix).
s1="$work/stage1"
mkdir -p "$s1"/{bin,modules,proc,sys,dev,run/cryptsetup,sysroot,etc/lvm}
cp /bin/busybox "$s1/bin/busybox"; ln -s busybox "$s1/bin/sh"
install -m 0755 "$IMG/stage1-init.sh" "$s1/init"
cp "$r/modules/"* "$s1/modules/"
add_bin "$s1" /usr/sbin/cryptsetup /usr/sbin/lvm /usr/sbin/dmsetup
add_modules "$s1" dm_mod dm_crypt xts aes_generic sha256_generic algif_skcipher
cp "$i/etc/lvm/lvm.conf" "$s1/etc/lvm/lvm.conf"
pack "$s1" "$OUT.partial/stage1.cpio.gz"

# kexec/ of a tarball: run, bzImage, initrd, and kexec itself (nixos-images ships a static
# kexec; ours is Debian's, started through its own loader and libraries).
kexec_dir() { # dir kernel initrd
  local d=$1/kexec
  mkdir -p "$d/lib"
  cp "$2" "$d/bzImage"
  cp "$3" "$d/initrd"
  install -m 0755 "$IMG/kexec-run.sh" "$d/run"
  cp -L /usr/sbin/kexec "$d/kexec.bin"
  for lib in $(ldd /usr/sbin/kexec | grep -o '/[^ ]*'); do cp -L "$lib" "$d/lib/"; done
  printf '#!/bin/sh\nd=$(dirname "$(readlink -f "$0")")\nexec "$d/lib/ld-linux-x86-64.so.2" --library-path "$d/lib" "$d/kexec.bin" "$@"\n' > "$d/kexec"
  chmod 0755 "$d/kexec"
}
kexec_dir "$work/tar" "$KERNEL" "$work/installer.cpio.gz"
tar -C "$work/tar" -czf "$OUT.partial/nixos-kexec-installer-test.tar.gz" kexec
# The broken variant: a kernel image kexec cannot load (and a small initrd).
head -c 65536 /dev/urandom > "$work/broken-kernel"
kexec_dir "$work/broken" "$work/broken-kernel" "$OUT.partial/stage1.cpio.gz"
tar -C "$work/broken" -czf "$OUT.partial/nixos-kexec-installer-broken-test.tar.gz" kexec

# The userland of the installed test system (linked in as /usr, /lib, ... by its init).
rt="$OUT.partial/runtime"
mkdir -p "$rt/bin" "$rt/sbin"
cp /bin/busybox "$rt/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rt/bin/$a" ] || ln -s busybox "$rt/bin/$a"; done
# util-linux setsid (busybox's has no --wait) and GNU cpio: what kexec/run needs on a NixOS host;
# util-linux flock, on every NixOS's system path (system-path.nix requiredPackages).
add_bin "$rt" /usr/bin/setsid /usr/bin/flock /usr/bin/cpio /usr/bin/nohup /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/nix /usr/sbin/sgdisk /lib/systemd/systemd /lib/systemd/systemd-shutdown \
  /usr/bin/systemctl /usr/bin/systemd-run /usr/bin/systemd-tmpfiles /usr/bin/journalctl /usr/bin/systemd-escape /usr/bin/dbus-daemon
# The system bus, as on every NixOS (systemd-run --wait/--pipe and systemctl use it).
mkdir -p "$rt/usr/share/dbus-1/system.d"
cp /usr/share/dbus-1/system.conf "$rt/usr/share/dbus-1/"
cp /usr/share/dbus-1/system.d/org.freedesktop.systemd1.conf "$rt/usr/share/dbus-1/system.d/"
for n in nix-store nix-env nix-instantiate nix-build nix-collect-garbage; do ln -s nix "$rt/usr/bin/$n"; done
mv "$rt/lib" "$rt/lib.tmp" 2>/dev/null && mkdir -p "$rt/usr" && cp -a "$rt/lib.tmp/." "$rt/usr/lib/" 2>/dev/null; rm -rf "$rt/lib.tmp"
ln -sfn usr/lib "$rt/lib"
# systemd/bin: systemd's own binaries and nothing else (a NixOS transient unit's PATH).
mkdir -p "$rt/systemd/bin"
for n in systemctl systemd-run systemd-tmpfiles journalctl systemd-escape; do mv "$rt/usr/bin/$n" "$rt/systemd/bin/$n"; ln -s ../../systemd/bin/$n "$rt/usr/bin/$n"; done
# reboot/poweroff/halt are systemctl (it acts on its name), as with systemd-sysv.
for n in reboot poweroff halt shutdown; do rm -f "$rt/bin/$n"; ln -s ../systemd/bin/systemctl "$rt/bin/$n"; done
# /bin/sh is bash, as on NixOS: busybox's sh would run its applets (sed, sleep, ...) even
# when they are not on PATH, and hide a missing PATH.
add_bin "$rt" /bin/bash
ln -sfn bash "$rt/bin/sh"
# The units of the installed test system: a minimal boot (sshd, the test system's service).
mkdir -p "$rt/usr/lib/systemd/system"
cp "$IMG"/units/* "$rt/usr/lib/systemd/system/"
ln -s multi-user.target "$rt/usr/lib/systemd/system/default.target"

touch "$OUT.partial/ready"
rm -rf "$OUT" && mv "$OUT.partial" "$OUT"
echo "$OUT"
