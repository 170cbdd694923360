#!/usr/bin/env bash
# Builds the QEMU test images from Debian's packages into a cache outside the clone, keyed
# by a hash of the inputs (this script, the image files, the kernel): a RAM "rescue" system
# with sshd and kexec, and a kexec tarball in nixos-anywhere's format whose installer also
# has Nix and the disk tools. Prints the image directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${NIXOS_PULUMI_CACHE:-/var/cache/nixos-pulumi}/vm-images"
KVER="$(ls /lib/modules | sort -V | tail -1)"
KERNEL="/boot/vmlinuz-$KVER"
key="$( (cat "$0" "$ROOT"/test/vm/image/*; echo "$KVER"; dpkg-query -W openssh-server nix-bin busybox-static kexec-tools gdisk) | sha256sum | cut -c1-16)"
OUT="$CACHE/$key"
mkdir -p "$CACHE"
# One builder per set at a time (several checkouts and test processes share the cache).
exec 9>"$CACHE/.lock-$key"; flock 9
if [ -f "$OUT/ready" ]; then touch "$OUT"; echo "$OUT"; exit 0; fi
# Sets of other inputs unused for two days are dropped (several checkouts may share the cache).
mkdir -p "$CACHE" && find "$CACHE" -mindepth 1 -maxdepth 1 ! -name "$key" ! -name ".lock-*" -mtime +2 -exec rm -rf {} +
rm -rf "$OUT.partial" && mkdir -p "$OUT.partial"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

add_bin() { # root binary...: copies binaries and the shared libraries they load
  local root=$1; shift
  for b in "$@"; do
    cp --parents -L "$b" "$root"
    for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*' || true); do cp --parents -L "$lib" "$root"; done
  done
}

base_root() { # root name marker
  local root=$1
  mkdir -p "$root"/{bin,etc/ssh,root/.ssh,modules,proc,sys,dev,run,tmp,mnt}
  cp /bin/busybox "$root/bin/busybox"; ln -s busybox "$root/bin/sh"
  install -m 0755 "$ROOT/test/vm/image/rescue-init.sh" "$root/init"
  add_bin "$root" /usr/sbin/sshd /usr/sbin/kexec /usr/bin/cpio
  : > "$root/modules/order"
  for m in virtio_pci virtio_blk virtio_net ext4 vfat nls_cp437 nls_ascii; do
    modprobe --show-depends -S "$KVER" "$m" | awk '/^insmod/ {print $2}' | while read -r ko; do
      name=$(basename "$ko")
      grep -qx "$name" "$root/modules/order" && continue
      cp "$ko" "$root/modules/$name"; echo "$name" >> "$root/modules/order"
    done
  done
  echo "$2" > "$root/etc/hostname"
  echo "$3" > "$root/etc/marker"
  printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  printf 'root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
  chmod 600 "$root/etc/shadow"
  printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nUseDNS no\nAuthorizedKeysFile /root/.ssh/authorized_keys\nSubsystem sftp internal-sftp\n' > "$root/etc/ssh/sshd_config"
}

pack() { (cd "$1" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$2"; }

ssh-keygen -q -t ed25519 -N "" -C test-vm-client -f "$OUT.partial/client_ed25519"
ssh-keygen -q -t ed25519 -N "" -C rescue-host -f "$OUT.partial/rescue_host_ed25519"
ssh-keygen -q -t ed25519 -N "" -C installer-host -f "$OUT.partial/installer_host_ed25519"
cp "$KERNEL" "$OUT.partial/bzImage"

# The rescue system: what a cloud provider's rescue mode boots, from RAM.
r="$work/rescue"
base_root "$r" rescue "nixos-pulumi rescue system starting"
cp "$OUT.partial/rescue_host_ed25519" "$r/etc/ssh/ssh_host_ed25519_key"
cp "$OUT.partial/client_ed25519.pub" "$r/root/.ssh/authorized_keys"
pack "$r" "$OUT.partial/rescue.cpio.gz"

# The installer: the rescue base plus Nix and the disk tools; its authorized keys come from
# the system it was kexec'd from (kexec/run appends them).
i="$work/installer"
base_root "$i" installer "nixos-pulumi installer starting"
cp "$OUT.partial/installer_host_ed25519" "$i/etc/ssh/ssh_host_ed25519_key"
add_bin "$i" /usr/bin/nix /usr/sbin/sgdisk /usr/sbin/mke2fs /usr/sbin/mkfs.fat /usr/bin/partx /usr/sbin/blkid \
  /usr/bin/mount /usr/bin/umount /usr/bin/findmnt /usr/bin/mountpoint /usr/sbin/blockdev /usr/bin/stat /usr/bin/xargs
for n in nix-store nix-env nix-instantiate nix-build; do ln -s nix "$i/usr/bin/$n"; done
ln -s mke2fs "$i/usr/sbin/mkfs.ext4"; ln -s mkfs.fat "$i/usr/sbin/mkfs.vfat"
mkdir -p "$i/etc/nix" "$i/nix/store" "$i/nix/var/nix"
printf 'build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n' > "$i/etc/nix/nix.conf"
pack "$i" "$work/installer.cpio.gz"
mkdir -p "$work/tar/kexec"
cp "$KERNEL" "$work/tar/kexec/bzImage"
cp "$work/installer.cpio.gz" "$work/tar/kexec/initrd"
install -m 0755 "$ROOT/test/vm/image/kexec-run.sh" "$work/tar/kexec/run"
tar -C "$work/tar" -czf "$OUT.partial/nixos-kexec-installer-test.tar.gz" kexec

# Stage 1 of the installed test system: drivers, mount root=, switch_root to init=.
s1="$work/stage1"
mkdir -p "$s1"/{bin,modules,proc,sys,dev,sysroot}
cp /bin/busybox "$s1/bin/busybox"; ln -s busybox "$s1/bin/sh"
install -m 0755 "$ROOT/test/vm/image/stage1-init.sh" "$s1/init"
cp "$i/modules/"* "$s1/modules/"
pack "$s1" "$OUT.partial/stage1.cpio.gz"

# The userland of the installed test system (linked in as /usr, /lib, ... by its init).
rt="$OUT.partial/runtime"
mkdir -p "$rt/bin" "$rt/sbin"
cp /bin/busybox "$rt/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rt/bin/$a" ] || ln -s busybox "$rt/bin/$a"; done
add_bin "$rt" /usr/sbin/sshd /usr/bin/nix /usr/sbin/kexec /usr/sbin/sgdisk
for n in nix-store nix-env nix-instantiate nix-build; do ln -s nix "$rt/usr/bin/$n"; done
mv "$rt/lib" "$rt/lib.tmp" 2>/dev/null && mkdir -p "$rt/usr" && cp -a "$rt/lib.tmp/." "$rt/usr/lib/" 2>/dev/null; rm -rf "$rt/lib.tmp"
ln -sfn usr/lib "$rt/lib"

touch "$OUT.partial/ready"
rm -rf "$OUT" && mv "$OUT.partial" "$OUT"
echo "$OUT"
