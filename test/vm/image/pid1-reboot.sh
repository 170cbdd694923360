# Sourced by the /init (PID 1) of the test VMs' RAM systems, the installer and the rescue
# system. `reboot` there is busybox's: without -f it only signals PID 1 (SIGTERM) and
# returns. A PID 1 without a handler never sees that signal (the kernel drops it), so the
# machine would stay up. On NixOS `reboot` is `systemctl reboot`: it returns at once and
# PID 1 stops every process, unmounts and reboots (test/fixtures/CONTRACTS.md, "reboot").
# This does the same on SIGTERM.
clean_reboot() {
  echo "nixos-pulumi $(cat /etc/hostname): reboot requested (SIGTERM to PID 1): stopping every process, unmounting, rebooting" > /dev/console
  kill -TERM -1 2>/dev/null
  sleep 1
  kill -KILL -1 2>/dev/null
  sync
  swapoff -a 2>/dev/null
  umount -a -r 2>/dev/null
  sync
  reboot -f
}
trap clean_reboot TERM
# The idle loop of PID 1: `wait` returns when the trapped signal arrives (a foreground
# `sleep` would hold the handler back until it ends).
pid1_idle() {
  while :; do
    sleep 3600 &
    wait $!
  done
}
