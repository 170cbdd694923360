#!/bin/sh
# PID 1 of a test host's namespaces (mount, PID, UTS). Gives the host its own /nix, /run,
# /etc (overlay on the real one), /root, /tmp, /mnt, /boot and, with disks, its own /dev;
# then runs sshd on the host's loopback address until the harness kills this process.
# Environment: STATE (per-host dir), NAME, ADDRESS, HOST_STATE (rescue|installer|nixos), DISKS ("vda:7:3 ..."),
# NIX_BIN (optional: a wrapper dir of scripts/nix-versions.sh; its nix replaces /usr/bin's here)
set -eu
mount --make-rprivate /
mkdir -p "$STATE/nix" "$STATE/etc-upper" "$STATE/etc-work" "$STATE/mnt" "$STATE/boot"
mount --bind "$STATE/nix" /nix
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd
echo "$ADDRESS" > /run/test-host-address
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$STATE/etc-upper,workdir=$STATE/etc-work" /etc
mount -t tmpfs -o mode=0700 tmpfs /root
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount --bind "$STATE/mnt" /mnt
mount --bind "$STATE/boot" /boot
hostname "$NAME"
echo "$NAME" > /etc/hostname
cat "$STATE/machine-id" > /etc/machine-id
echo "$HOST_STATE" > /etc/test-host-state
# What each state is, by /etc/os-release (the provider reads it, as nixos-anywhere does):
# a rescue system is some other Linux; the installer is NixOS's kexec installer, with
# nixos-install and nixos-enter on its PATH; a NixOS host's comes from its activation.
rm -f /etc/os-release /etc/NIXOS
case "$HOST_STATE" in
  rescue) printf 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n' > /etc/os-release ;;
  installer)
    printf 'NAME=NixOS\nID=nixos\nVARIANT_ID=installer\nVARIANT="NixOS installer (test double)"\n' > /etc/os-release
    mount --bind "$INSTALLER_TOOLS" /usr/local/sbin ;;
esac
rm -f /etc/nix/nix.conf.lock
# /usr/bin/nix-store, nix-env, ... are links to /usr/bin/nix; the wrapper runs the command it is called as.
if [ -n "${NIX_BIN:-}" ]; then mount --bind "$NIX_BIN/nix" "$(readlink -f /usr/bin/nix)"; fi
mkdir -p /root/.ssh
cp "$STATE/authorized_keys" /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys

if [ -n "${DISKS:-}" ]; then
  mount -t tmpfs -o mode=0755 tmpfs /dev
  mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/full c 1 7
  mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0
  mkdir -p /dev/pts /dev/shm
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
  ln -s pts/ptmx /dev/ptmx
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
  ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
  for d in $DISKS; do
    name="${d%%:*}"; rest="${d#*:}"; major="${rest%%:*}"; minor="${rest#*:}"
    mknod -m 660 "/dev/$name" b "$major" "$minor"
  done
fi

# The command is kept so a test system's "cut-ssh" activation can restart sshd.
echo "/usr/sbin/sshd -D -f $STATE/sshd_config -E $STATE/sshd.log" > /run/sshd.cmd
/usr/sbin/sshd -D -f "$STATE/sshd_config" -E "$STATE/sshd.log" &
echo ready > "$STATE/ready"
# Reap children (also orphans: dash's wait reaps any child) forever, without spinning when
# sshd is gone; the harness ends the host by killing this process (PID 1).
while :; do sleep 3600 & wait; done
