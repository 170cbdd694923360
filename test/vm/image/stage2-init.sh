# Stage 2 of the installed test system in a VM (the system's `init`; the builder prepends
# BB, RUNTIME and TOPLEVEL), as NixOS's stage-2-init: mount the special filesystems, run
# the system's activation script, then exec systemd as PID 1. RUNTIME is a store path with
# a Debian userland subset (systemd, sshd, Nix, busybox), linked in as /usr, /lib, ... .
# systemd's default environment is a NixOS one: PATH holds only systemd's own bin directory
# ($RUNTIME/systemd/bin), so a transient unit (systemd-run) finds no sed, sleep or nix-env
# unless it is given absolute paths.
b() { "$BB" "$@"; }
b mkdir -p /proc /sys /dev /run /tmp
b mount -t proc proc /proc
b mount -t sysfs sys /sys
b mount -t devtmpfs dev /dev
b mkdir -p /dev/pts /dev/shm && b mount -t devpts devpts /dev/pts
b mount -t tmpfs -o mode=0755 tmpfs /run
b mount -t tmpfs -o mode=1777 tmpfs /tmp
# Test variant no-boot: a system that never comes up (no sshd, no systemd), as a broken
# configuration would leave a machine after a reboot.
if [ "$VARIANT" = no-boot ]; then
  echo "nixos-pulumi stage 2: $TOPLEVEL does not come up (test variant no-boot)" > /dev/console
  exec "$BB" sleep 1000000
fi
b mount -o remount,rw /
for d in usr lib lib64 bin sbin; do b ln -sfn "$RUNTIME/$d" "/$d"; done
b mkdir -p /etc/ssh /etc/nix /etc/systemd /root/.ssh /var/empty /var/log /var/lib
[ -L /var/run ] || { b rm -rf /var/run; b ln -s /run /var/run; }
b chmod 0755 /etc/ssh
printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\nmessagebus:x:101:101::/run/dbus:/bin/false\nnobody:x:65534:65534::/var/empty:/bin/false\n' > /etc/passwd
printf 'root:x:0:\nmessagebus:x:101:\nnogroup:x:65534:\nsystemd-journal:x:190:\n' > /etc/group
printf 'root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n' > /etc/shadow
printf 'build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n' > /etc/nix/nix.conf
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nUseDNS no\nAuthorizedKeysFile /root/.ssh/authorized_keys\n' > /etc/ssh/sshd_config
[ -s /etc/machine-id ] || : > /etc/machine-id
# The test system's services.openssh.hostKeys is [ ed25519 ]: sshd serves only that key,
# and when none was installed it is generated now, as sshd.nix's preStart does on first
# boot: a key nobody could have pinned before.
[ -f /etc/ssh/ssh_host_ed25519_key ] || /usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
echo nixos > /etc/hostname
b mkdir -p /run/systemd/system.conf.d
printf '[Manager]\nDefaultEnvironment=PATH=%s/systemd/bin/\nDefaultStandardOutput=tty\nShowStatus=no\n' "$RUNTIME" > /run/systemd/system.conf.d/nixos-path.conf
b ip link set lo up
b ip link set eth0 up
b ip addr add 10.0.2.15/24 dev eth0
b ip route add default via 10.0.2.2
b ln -sfn "$TOPLEVEL" /run/booted-system
# The test service listens on every address: on the loopback (tests inside the guest) and
# on 10.0.2.15, where QEMU delivers a host forward to port 8080 (the demo's service URL).
echo 0.0.0.0 > /run/test-host-address
echo "nixos-pulumi stage 2: running the activation script of $TOPLEVEL" > /dev/console
"$TOPLEVEL/activate"
# The system's other fileSystems (/etc/fstab, e.g. /boot on the ESP). On NixOS systemd
# mounts them once udev made /dev/disk/by-*; this guest has no udev: make the by-partlabel
# links from the kernel's uevents as udev would, then mount them before systemd starts.
b mkdir -p /dev/disk/by-partlabel
for u in /sys/class/block/*/uevent; do
  name="$(b sed -n 's/^PARTNAME=//p' "$u")"
  [ -n "$name" ] && b ln -sfn "../../$(b basename "$(b dirname "$u")")" "/dev/disk/by-partlabel/$name"
done
# Device-mapper devices opened by stage 1 (LUKS, LVM): /dev/mapper/<name>, and for a
# logical volume /dev/<vg>/<lv> too (LVM doubles a "-" inside either name), as udev's
# dm and lvm rules would.
b mkdir -p /dev/mapper
for d in /sys/block/dm-*; do
  [ -e "$d/dm/name" ] || continue
  name="$(b cat "$d/dm/name")"
  numbers="$(b cat "$d/dev")"
  [ -b "/dev/mapper/$name" ] || b mknod "/dev/mapper/$name" b "${numbers%:*}" "${numbers#*:}"
  case "$(b cat "$d/dm/uuid")" in
    LVM-*)
      vg_lv="$(echo "$name" | b sed 's|--|/|g; s|-| |; s|/|-|g')"
      b mkdir -p "/dev/${vg_lv% *}" && b ln -sfn "../mapper/$name" "/dev/${vg_lv% *}/${vg_lv#* }"
      ;;
  esac
done
b grep -v '^[[:space:]]*\(#\|$\)' /etc/fstab 2>/dev/null | while read -r dev mnt fstype opts _; do
  [ "$mnt" = / ] && continue  # mounted by stage 1
  b mkdir -p "$mnt"
  case "$dev" in /dev/*) dev="$(b readlink -f "$dev")" ;; esac
  b mount -t "$fstype" -o "${opts:-defaults}" "$dev" "$mnt" ||
    echo "nixos-pulumi stage 2: could not mount $dev on $mnt" > /dev/console
done
echo "nixos-pulumi stage 2: $TOPLEVEL up, starting systemd" > /dev/console
exec "$RUNTIME/usr/lib/systemd/systemd" --log-target=console --log-level=notice
