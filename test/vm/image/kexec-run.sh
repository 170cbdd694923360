#!/bin/sh
# kexec/run of the test installer tarball: the contract of nixos-images'
# nix/kexec-installer/kexec-run.sh (read there, not copied). Run as root from the unpacked
# tarball (nixos-anywhere: `setsid --wait kexec/run`). It
#   - carries into the installer's initrd ONLY: the authorized keys of root and of
#     $SUDO_USER/$DOAS_USER (.ssh/authorized_keys{,2}, /etc/ssh/authorized_keys.d/<user>),
#     the running system's SSH host keys (/etc/ssh/ssh_host_*) and /etc/machine-id;
#   - loads the installer with the tarball's own kexec; if that fails it prints
#     "kexec failed, dumping dmesg" and exits 1;
#   - prints "machine will boot into nixos in 6s...", sends its further output to
#     /dev/kmsg and kexecs in the background after 6 seconds.
# `set -x` traces every step on stderr (nixos-anywhere tees it into its log).
set -eux
kexec_extra_flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kexec-extra-flags) kexec_extra_flags="$2"; shift ;;
  esac
  shift
done

SCRIPT_DIR=$(dirname "$(readlink -f "$0")")
INITRD_TMP=$(TMPDIR=$SCRIPT_DIR mktemp -d)
cd "$INITRD_TMP"
cleanup() { rm -rf "$INITRD_TMP"; }
trap cleanup EXIT
mkdir -p ssh

keys_of() { # home directory
  for f in .ssh/authorized_keys .ssh/authorized_keys2; do
    if test -e "$1/$f"; then
      grep -o '\(\(ssh\|ecdsa\|sk\)-[^ ]* .*\)' "$1/$f" >> ssh/authorized_keys || true
    fi
  done
}
keys_of /root
if test -n "${DOAS_USER-}"; then SUDO_USER="$DOAS_USER"; fi
if test -n "${SUDO_USER-}"; then keys_of "$(sh -c "echo ~$SUDO_USER")"; fi
if test -e /etc/ssh/authorized_keys.d/root; then cat /etc/ssh/authorized_keys.d/root >> ssh/authorized_keys; fi
if test -n "${SUDO_USER-}" && test -e "/etc/ssh/authorized_keys.d/$SUDO_USER"; then
  cat "/etc/ssh/authorized_keys.d/$SUDO_USER" >> ssh/authorized_keys
fi
for p in /etc/ssh/ssh_host_*; do
  test -e "$p" || continue
  cp -a "$p" ssh
done
[ -f /etc/machine-id ] && cp /etc/machine-id machine-id

find . | cpio -o -H newc | gzip -9 >> "$SCRIPT_DIR/initrd"

kexecSyscallFlags=""
if printf "%s\n" "6.1" "$(uname -r)" | sort -c -V 2>&1; then
  kexecSyscallFlags="--kexec-syscall-auto"
fi
if ! sh -c "'$SCRIPT_DIR/kexec' --load '$SCRIPT_DIR/bzImage' $kexecSyscallFlags $kexec_extra_flags \
  --initrd='$SCRIPT_DIR/initrd' --no-checks --command-line 'console=ttyS0 panic=10'"; then
  echo "kexec failed, dumping dmesg"
  dmesg | tail -n 100
  exit 1
fi

echo "machine will boot into nixos in 6s..."
if test -e /dev/kmsg; then exec > /dev/kmsg 2>&1; else exec > /dev/null 2>&1; fi
nohup sh -c "sleep 6 && '$SCRIPT_DIR/kexec' -e ${kexec_extra_flags}" &
