#!/bin/sh
# nixos-pulumi activation, run ON THE TARGET detached from the SSH session, so a dropped
# connection cannot stop it halfway. The deployer reads the verdict back from RUN_DIR:
#   output  - everything switch-to-configuration (and the rollback) printed
#   result  - ok | reboot-required | failed | rolled-back | rollback-failed | profile-failed | not-activated
#   reason  - what failed: switch | health-check | not-confirmed | init-interface (empty when ok)
#   status  - the exit code of switch-to-configuration, or of the failed health check
#   awaiting-confirm - magic rollback: the new system is active and waits for RUN_DIR/confirm
#   previous, generation - the system before, the profile generation after
#   done    - written last
# usage: activate.sh RUN_DIR TOPLEVEL ACTION(switch|boot|test) ROLLBACK(magic|on-failure|none) [CONFIRM_SECONDS [INSTALL_BOOTLOADER(0|1)]]
# magic: after a successful activation, roll back unless the deployer creates RUN_DIR/confirm
# (over a new connection) within CONFIRM_SECONDS; a deployer that cannot reach the new
# system cannot confirm it.
# RUN_DIR/health-checks may hold one shell command per line, run after activation.
#
# On NixOS a transient systemd unit's PATH holds only systemd's own bin directory: every
# tool comes from the systems' sw/bin (the new one first), as on a NixOS login shell.
# switch-to-configuration's exit 100 means "the new init needs a reboot": the profile and
# the bootloader point at the new system, nothing was activated, and it is no failure.
set -u
dir="$1"; toplevel="$2"; action="$3"; rollback="$4"; confirm_seconds="$5"; install_bootloader="$6"
PATH="$toplevel/sw/bin:/run/current-system/sw/bin:/run/wrappers/bin"
export PATH
profile=/nix/var/nix/profiles/system
exec >"$dir/output" 2>&1 </dev/null
start_dir=$PWD

# Each process costs 10-30 ms on a busy machine: the shell's own expansions, `cd -P` and
# `read` stand in for sed and `readlink -f` where they give the same.
# The profile's generation: N of its link's "system-N-link", else empty.
generation_of_profile() {
  generation="$(readlink "$profile" 2>/dev/null)"
  case "$generation" in system-*-link) generation="${generation#system-}"; generation="${generation%-link}" ;; *) generation="" ;; esac
  case "$generation" in *[!0-9]*) generation="" ;; esac
}
# `readlink -f PATH`, resolved by the shell itself when PATH is a directory.
resolved() {
  if [ -d "$1" ] && cd -P "$1" 2>/dev/null; then resolved="$PWD"; cd "$start_dir" 2>/dev/null || cd /
  else resolved="$(readlink -f "$1" 2>/dev/null || true)"; fi
}

finish() { # result reason status
  echo "$1" > "$dir/result"
  echo "$2" > "$dir/reason"
  echo "$3" > "$dir/status"
  generation_of_profile; echo "$generation" > "$dir/generation"
  : > "$dir/done"
  exit 0
}

# What a rollback restores, recorded before anything changes: the profile's generation (the
# boot default) and the running system. They can disagree (after a `test`, or a `boot` not
# yet rebooted into): `test` restores only the running one, `boot` only the profile.
generation_of_profile; previous_generation="$generation"
resolved "$profile"; previous_profile="$resolved"
resolved /run/current-system; previous_running="$resolved"
if [ "$action" = test ] || [ -z "$previous_profile" ]; then previous="$previous_running"; else previous="$previous_profile"; fi
echo "$previous" > "$dir/previous"

if [ "$action" != test ]; then
  nix-env -p "$profile" --set "$toplevel" || finish profile-failed switch 1
fi

# As nixos-rebuild --install-bootloader: for the new system only, never for a rollback.
if [ "$install_bootloader" = 1 ]; then
  NIXOS_INSTALL_BOOTLOADER=1 "$toplevel/bin/switch-to-configuration" "$action"
else
  "$toplevel/bin/switch-to-configuration" "$action"
fi
code=$?
reason=switch
# `test` installs no bootloader entry: its exit 100 activated nothing and no reboot brings
# the new system either, so it is no success.
[ "$code" -eq 100 ] && [ "$action" = test ] && finish not-activated init-interface 100
[ "$code" -eq 100 ] && finish reboot-required "" 100
if [ "$code" -eq 0 ] && [ -s "$dir/health-checks" ]; then
  while IFS= read -r check; do
    [ -n "$check" ] || continue
    echo "health check: $check"
    sh -c "$check"
    code=$?
    if [ "$code" -ne 0 ]; then
      echo "health check failed (exit $code): $check"
      reason=health-check
      break
    fi
  done < "$dir/health-checks"
fi
if [ "$code" -eq 0 ] && [ "$rollback" = magic ]; then
  : > "$dir/awaiting-confirm"
  waited=0
  while [ ! -e "$dir/confirm" ] && [ "$waited" -lt $((confirm_seconds * 10)) ]; do
    sleep 0.1; waited=$((waited + 1))
  done
  [ -e "$dir/confirm" ] && finish ok "" 0
  echo "no confirmation from the deployer within ${confirm_seconds}s"
  reason=not-confirmed
fi
[ "$reason" = switch ] && [ "$code" -eq 0 ] && finish ok "" 0

echo "activation failed ($reason, exit $code)"
if [ "$rollback" = none ] || [ -z "$previous" ] || [ "$previous" = "$toplevel" ]; then
  finish failed "$reason" "$code"
fi
echo "rolling back to $previous"
# To the recorded generation, not `nix-env --rollback` (the generation before the newest
# need not be the one the machine had), and the bootloader follows the profile: real
# bootloader builders write entries for the profile's generations only.
if [ "$action" != test ] && [ -n "$previous_profile" ]; then
  if ! { { nix-env -p "$profile" --switch-generation "$previous_generation" || nix-env -p "$profile" --set "$previous_profile"; } &&
    "$previous_profile/bin/switch-to-configuration" boot; }; then
    finish rollback-failed "$reason" "$code"
  fi
fi
if [ "$action" != boot ] && [ -n "$previous_running" ]; then
  "$previous_running/bin/switch-to-configuration" test || finish rollback-failed "$reason" "$code"
fi
finish rolled-back "$reason" "$code"
