#!/bin/sh
# nixos-enter of the test installer: the contract of nixpkgs'
# pkgs/by-name/ni/nixos-enter/nixos-enter.sh (read there, not copied):
#   re-executes itself in new mount, UTS and PID namespaces (unshare --fork --mount --uts
#     --mount-proc --pid) and makes every mount private (mount --make-rprivate /), so its
#     mounts vanish with it and never touch the installer's own;
#   flags --root (default /mnt), --system (default /nix/var/nix/profiles/system),
#     -c/--command CMD (run by <system>/sw/bin/bash -c), --silent, -- CMD...; an unknown
#     one: "nixos-enter: unknown option `X'", exit 1;
#   refuses a root without etc/NIXOS: exit 126;
#   bind-mounts /dev and /sys (rbind) into the root;
#   runs the system's activation script first: IN_NIXOS_ENTER=1 chroot <root> <system>/activate
#     (output to stderr, failure ignored), then <system>/sw/bin/systemd-tmpfiles --create
#     --remove -E (failure ignored), then the command in the chroot, with the caller's
#     environment (NIXOS_INSTALL_BOOTLOADER passes through).
# /proc and /run in the root: on NixOS the activation script's specialfs snippet mounts
# them inside the chroot; our test systems' activation does not, so this double mounts
# them (proc of the new PID namespace: /proc/1 there is not systemd).
set -e
if [ -z "${NIXOS_ENTER_REEXEC-}" ]; then
  export NIXOS_ENTER_REEXEC=1
  exec unshare --fork --mount --uts --mount-proc --pid -- "$0" "$@"
else
  mount --make-rprivate /
fi

mountPoint=/mnt
system=/nix/var/nix/profiles/system
command=
silent=0
while [ "$#" -gt 0 ]; do
  i="$1"; shift 1
  case "$i" in
    --root) mountPoint="$1"; shift 1 ;;
    --system) system="$1"; shift 1 ;;
    --command|-c) command="$1"; shift 1 ;;
    --silent) silent=1 ;;
    --) break ;;
    *) echo "$0: unknown option \`$i'"; exit 1 ;;
  esac
done

if [ ! -e "$mountPoint/etc/NIXOS" ]; then
  echo "$0: '$mountPoint' is not a NixOS installation" >&2
  exit 126
fi

mkdir -p "$mountPoint/dev" "$mountPoint/sys"
chmod 0755 "$mountPoint/dev" "$mountPoint/sys"
mount --rbind /dev "$mountPoint/dev"
mount --rbind /sys "$mountPoint/sys"
mkdir -p "$mountPoint/proc" "$mountPoint/run"
mount -t proc proc "$mountPoint/proc"
mount -t tmpfs -o mode=0755 tmpfs "$mountPoint/run"

(
  if [ "$silent" -eq 1 ]; then exec 2>/dev/null; fi
  LOCALE_ARCHIVE="$system/sw/lib/locale/locale-archive" IN_NIXOS_ENTER=1 chroot "$mountPoint" "$system/activate" 1>&2 || true
  chroot "$mountPoint" "$system/sw/bin/systemd-tmpfiles" --create --remove -E 2>/dev/null || true
)

unset TMPDIR
if [ -n "$command" ]; then
  exec chroot "$mountPoint" "$system/sw/bin/bash" -c "$command"
elif [ "$#" -gt 0 ]; then
  exec chroot "$mountPoint" "$@"
else
  exec chroot "$mountPoint" "$system/sw/bin/bash" --login
fi
