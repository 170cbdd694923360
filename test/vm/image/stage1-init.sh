#!/bin/sh
# Stage 1 of the installed test system (its `initrd`), the double of NixOS's scripted stage 1
# (nixos/modules/system/boot/stage-1-init.sh, luksroot.nix): load the drivers, open the
# system's LUKS devices (boot.initrd.luks.devices, in /etc/luks-devices) with their key
# files, activate LVM (`lvm vgchange -ay`), mount "/" as the system's fileSystems say (fsInfo,
# /etc/fsinfo: the kernel command line names no root) and hand over to init=. A key file
# missing from the initrd means a passphrase prompt nobody answers: the machine does not
# come up. The system's configuration is the second cpio archive of the initrd (system.nix).
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r module; do insmod "/modules/$module" 2>/dev/null; done < /modules/order
say() { echo "nixos-pulumi stage 1: $*" > /dev/console; }
fail() { say "$*"; sleep 30; reboot -f; }
init=$(sed -n 's/.*init=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$init" ] || fail "no init= on the kernel command line"
read -r rootDevice rootMount rootType rootOptions _ < /etc/fsinfo
[ "$rootMount" = / ] || fail "the system's fileSystems name no root filesystem"
# No udev here: make the by-partlabel links and the device-mapper names as udev would.
links() {
  local u label
  mkdir -p /dev/disk/by-partlabel /dev/mapper
  for u in /sys/class/block/*/uevent; do
    label="$(sed -n 's/^PARTNAME=//p' "$u")"
    [ -n "$label" ] && ln -sfn "../../$(basename "$(dirname "$u")")" "/dev/disk/by-partlabel/$label"
  done
  dmsetup mknodes 2>/dev/null
}
wait_for() { for _ in $(seq 1 100); do links; [ -b "$(readlink -f "$1")" ] && return 0; sleep 0.1; done; return 1; }
while read -r name device keyFile allowDiscards; do
  [ -n "$name" ] || continue
  wait_for "$device" || fail "waiting for device $device to appear: timed out"
  if [ "$keyFile" = - ] || [ ! -e "$keyFile" ]; then
    # luksroot.nix: no key file, a passphrase prompt on the console; nobody types here.
    say "Passphrase for $device ($name): "
    exec sleep 1000000
  fi
  discards=""; [ "$allowDiscards" = true ] && discards=--allow-discards
  cryptsetup open $discards --key-file "$keyFile" "$(readlink -f "$device")" "$name" ||
    fail "cannot open $device with the key file $keyFile"
done < /etc/luks-devices
lvm vgchange -ay >/dev/null 2>&1
lvm vgmknodes >/dev/null 2>&1
say "mounting $rootDevice on / ($rootType), starting $init"
wait_for "$rootDevice" || fail "waiting for device $rootDevice to appear: timed out"
mkdir -p /sysroot
mount -t "$rootType" -o "${rootOptions:-defaults}" "$(readlink -f "$rootDevice")" /sysroot || fail "cannot mount $rootDevice"
umount /sys /proc
umount /dev
exec switch_root /sysroot "$init"
