#!/bin/sh
# nixos-install of the test installer: the contract of nixpkgs'
# pkgs/by-name/ni/nixos-install/nixos-install.sh (read there, not copied), for a system
# given as a store path (this installer cannot evaluate configurations):
#   flags as upstream; an unknown one: "nixos-install: unknown option `X'", exit 1;
#   without --system: "configuration file <root>/etc/nixos/configuration.nix doesn't exist", exit 1
#     (a NixOS installer would build it; with none there it fails the same way);
#   every directory from the mount point up must be o+rx (mode ends in >= 5);
#   the system must already be valid in <root>'s Nix store (nix-env --store <root> --set);
#   sets <root>/nix/var/nix/profiles/system, creates <root>/etc/NIXOS;
#   installs the boot loader unless --no-bootloader: <root>/etc/mtab -> /proc/mounts, then
#     NIXOS_INSTALL_BOOTLOADER=1 nixos-enter --root <root> -c '/run/current-system/bin/switch-to-configuration boot'
#     (nixos-enter runs the activation script first; it sets /run/current-system);
#   asks for a root password only without --no-root-passwd AND with a terminal on stdin.
set -e
umask 0022
mountPoint=/mnt
system=
noBootLoader=
noRootPasswd=
noChannelCopy=
while [ "$#" -gt 0 ]; do
  i="$1"; shift 1
  case "$i" in
    --max-jobs|-j|--cores|-I|--substituters) shift 1 ;;
    --option) shift 2 ;;
    --root) mountPoint="$1"; shift 1 ;;
    --system|--closure) system="$1"; shift 1 ;;
    --flake|--file|-f|--attr|-A|--channel|--update-input)
      echo "nixos-install (test double): $i needs a Nix evaluation of a configuration, which this test installer cannot do; give --system <store path>" >&2
      exit 1 ;;
    --override-input) shift 2 ;;
    --recreate-lock-file|--no-update-lock-file|--no-write-lock-file|--no-registries|--commit-lock-file) ;;
    --no-channel-copy) noChannelCopy=1 ;;
    --no-root-password|--no-root-passwd) noRootPasswd=1 ;;
    --no-bootloader) noBootLoader=1 ;;
    --show-trace|--impure|--keep-going) ;;
    --debug) set -x ;;
    -v*|--verbose) ;;
    *) echo "$0: unknown option \`$i'"; exit 1 ;;
  esac
done

if ! test -e "$mountPoint"; then
  echo "mount point $mountPoint doesn't exist"
  exit 1
fi
checkPath="$(realpath "$mountPoint")"
while [ "$checkPath" != "/" ]; do
  mode="$(stat -c '%a' "$checkPath")"
  last="${mode#"${mode%?}"}"
  if [ "$last" -lt 5 ]; then
    echo "path $checkPath should have permissions 755, but had permissions $mode. Consider running 'chmod o+rx $checkPath'."
    exit 1
  fi
  checkPath="$(dirname "$checkPath")"
done

if [ -z "$system" ]; then
  echo "configuration file $mountPoint/etc/nixos/configuration.nix doesn't exist"
  exit 1
fi

tmpdir="$(mktemp -d -p "$mountPoint")"
trap 'rm -rf "$tmpdir"' EXIT
export TMPDIR="${TMPDIR:-$tmpdir}"

# The installer has no channel to copy (nixos-images builds it without one).
[ -n "$noChannelCopy" ] || [ ! -e /nix/var/nix/profiles/per-user/root/channels ] || echo "copying channel..."

nix-env --store "$mountPoint" -p "$mountPoint/nix/var/nix/profiles/system" --set "$system"

mkdir -m 0755 -p "$mountPoint/etc"
touch "$mountPoint/etc/NIXOS"

if [ -z "$noBootLoader" ]; then
  echo "installing the boot loader..."
  ln -sfn /proc/mounts "$mountPoint/etc/mtab"
  NIXOS_INSTALL_BOOTLOADER=1 nixos-enter --root "$mountPoint" -c 'set -e; hash -r; /run/current-system/bin/switch-to-configuration boot'
fi

if [ -z "$noRootPasswd" ] && [ -t 0 ]; then
  echo "nixos-install (test double): the test systems have no passwd; pass --no-root-passwd" >&2
  exit 1
fi

echo "installation finished!"
