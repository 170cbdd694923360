#!/bin/sh
# Stage 1 of the installed test system (its `initrd`): load the disk and filesystem drivers,
# mount root= and hand over to init= (the system's own init), as a NixOS stage 1 does.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r module; do insmod "/modules/$module" 2>/dev/null; done < /modules/order
root=$(sed -n 's/.*root=\([^ ]*\).*/\1/p' /proc/cmdline)
init=$(sed -n 's/.*init=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "nixos-pulumi stage 1: mounting $root, starting $init" > /dev/console
for _ in $(seq 1 100); do [ -b "$root" ] && break; sleep 0.1; done
mkdir -p /sysroot
mount -t ext4 "$root" /sysroot || { echo "cannot mount $root" > /dev/console; sleep 30; reboot -f; }
umount /sys /proc
umount /dev
exec switch_root /sysroot "$init"
