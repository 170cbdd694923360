#!/usr/bin/env bash
# Real Nix of other versions for the test matrix (test/harness/nix-versions.ts): per Debian
# suite a minimal root with that suite's nix-bin, cached outside the clone in
# $NIXOS_PULUMI_CACHE/nix-versions/<suite>/, and a bin/ of wrappers (nix, nix-store, ...) that
# run that root's Nix as if it were installed on this machine: in a private mount namespace
# the root's /usr (and its ld.so.cache) take the place of this machine's, everything else
# (/nix and its database, /etc/nix/nix.conf, /tmp, the work tree, $HOME) stays the real one.
# Idempotent: a suite whose root is ready is only checked (a stamp and one file); a missing or
# half-built one is built again (debootstrap, about a minute, then nix-bin).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
log() { printf '[nix-versions] %s\n' "$*" >&2; }

dir="$NIXOS_PULUMI_CACHE/nix-versions"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# bookworm's Nix (2.8) is this machine's own /usr/bin/nix (scripts/setup.sh installs it): its
# bin/ only execs it (so the matrix tests log its calls the same way).
suites=(trixie sid)
# Bumped when the way a root is built changes: older roots are then rebuilt.
recipe="minbase+nix-bin+busybox-static v1"
commands=(nix nix-store nix-build nix-instantiate nix-env nix-shell nix-copy-closure nix-collect-garbage
  nix-hash nix-prefetch-url nix-channel nix-daemon)

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

apt_in_root() { # root, apt-get arguments...: with /proc, Release files of sid may read as expired
  local root="$1"
  shift
  unshare --mount --propagation private /bin/sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" \
    env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Acquire::Check-Valid-Until=false "$@"
}

build_root() { # suite, destination
  local suite="$1" dest="$2" tmp="$2.partial"
  rm -rf "$tmp"
  log "debootstrap $suite (minbase)"
  debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$dir/$suite.debootstrap.log" 2>&1 || {
    tail -20 "$dir/$suite.debootstrap.log" >&2
    return 1
  }
  # busybox-static: the test systems' fixtures copy /bin/busybox in a builder (no sandbox).
  log "nix-bin in the $suite root"
  { apt_in_root "$tmp" update && apt_in_root "$tmp" install -y --no-install-recommends nix-bin busybox-static &&
    apt_in_root "$tmp" clean; } >"$dir/$suite.apt.log" 2>&1 || {
    tail -20 "$dir/$suite.apt.log" >&2
    return 1
  }
  rm -rf "$tmp/var/lib/apt/lists/"*
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

write_wrappers() { # suite dir, root ("" for this machine's own Nix)
  local sdir="$1" root="$2" bin="$1/bin" cmd text run
  mkdir -p "$bin"
  # One script, bin/nix, and the other commands as links to it, as Nix installs itself: it
  # runs the command it was called as (so a test host can bind it over its /usr/bin/nix).
  if [ -n "$root" ]; then
    run="exec unshare --mount --propagation private /bin/sh -c 'mount --bind \"\$0/usr\" /usr && mount --bind \"\$0/etc/ld.so.cache\" /etc/ld.so.cache && exec \"\$@\"' $root \"/usr/bin/\${0##*/}\" \"\$@\""
  else
    run="exec \"/usr/bin/\${0##*/}\" \"\$@\""
  fi
  # NIX_MATRIX_STDERR_LOG (tests only): also append the command line and Nix's stderr to that file,
  # so a test can assert what Nix printed for the provider's own calls; the stream itself is unchanged.
  text="#!/bin/bash
# The Nix in ${root:-/usr}, run as if installed here (written by scripts/nix-versions.sh)
if [ -n \"\${NIX_MATRIX_STDERR_LOG:-}\" ]; then
  printf '\$ %s\\n' \"\${0##*/} \$*\" >>\"\$NIX_MATRIX_STDERR_LOG\"
  exec 2> >(exec tee -a \"\$NIX_MATRIX_STDERR_LOG\" >&2)
fi
$run"
  if [ "$(cat "$bin/nix" 2>/dev/null)" != "$text" ]; then
    printf '%s\n' "$text" >"$bin/nix.new"
    chmod 755 "$bin/nix.new"
    mv "$bin/nix.new" "$bin/nix"
  fi
  for cmd in "${commands[@]}"; do
    [ "$cmd" != nix ] && [ -e "$root/usr/bin/$cmd" ] || continue
    [ "$(readlink "$bin/$cmd" 2>/dev/null)" = nix ] || ln -sfn nix "$bin/$cmd"
  done
}

for suite in "${suites[@]}"; do
  sdir="$dir/$suite"
  if [ "$(cat "$sdir/ready" 2>/dev/null)" != "$recipe" ] || [ ! -x "$sdir/root/usr/bin/nix" ]; then
    mkdir -p "$sdir"
    rm -f "$sdir/ready" "$sdir/version"
    build_root "$suite" "$sdir/root"
    write_wrappers "$sdir" "$sdir/root"
    "$sdir/bin/nix" --version >"$sdir/version"
    log "$suite: $(cat "$sdir/version")"
    echo "$recipe" >"$sdir/ready"
  else
    write_wrappers "$sdir" "$sdir/root"
  fi
done

write_wrappers "$dir/bookworm" ""
/usr/bin/nix --version >"$dir/bookworm/version.new"
mv "$dir/bookworm/version.new" "$dir/bookworm/version"
