#!/bin/sh
# nixos-pulumi activation, run ON THE TARGET detached from the SSH session, so a dropped
# connection cannot stop it halfway. The deployer reads the verdict back from RUN_DIR:
#   output  - everything switch-to-configuration (and the rollback) printed
#   status  - the exit code of switch-to-configuration (or of the failed health check)
#   result  - ok | failed | rolled-back | rollback-failed | profile-failed
#   awaiting-confirm - magic rollback: the new system is active and waits for RUN_DIR/confirm
#   previous, generation - the system before, the profile generation after
#   done    - written last
# usage: activate.sh RUN_DIR TOPLEVEL ACTION(switch|boot|test) ROLLBACK(magic|on-failure|none) [CONFIRM_SECONDS]
# magic: after a successful activation, roll back unless the deployer creates RUN_DIR/confirm
# (over a new connection) within CONFIRM_SECONDS; a deployer that cannot reach the new
# system cannot confirm it.
# RUN_DIR/health-checks may hold one shell command per line, run after activation.
set -u
dir="$1"; toplevel="$2"; action="$3"; rollback="$4"; confirm_seconds="${5:-60}"
profile=/nix/var/nix/profiles/system
exec >"$dir/output" 2>&1 </dev/null

finish() {
  echo "$1" > "$dir/result"
  echo "$2" > "$dir/status"
  readlink "$profile" 2>/dev/null | sed -n 's/^system-\([0-9]*\)-link$/\1/p' > "$dir/generation"
  : > "$dir/done"
  exit 0
}

previous="$(readlink -f "$profile" 2>/dev/null || true)"
[ -n "$previous" ] || previous="$(readlink -f /run/current-system 2>/dev/null || true)"
echo "$previous" > "$dir/previous"

if [ "$action" != test ]; then
  nix-env -p "$profile" --set "$toplevel" || finish profile-failed 1
fi

"$toplevel/bin/switch-to-configuration" "$action"
code=$?
if [ "$code" -eq 0 ] && [ -s "$dir/health-checks" ]; then
  while IFS= read -r check; do
    [ -n "$check" ] || continue
    echo "health check: $check"
    if ! sh -c "$check"; then
      echo "health check failed: $check"
      code=100
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
  if [ -e "$dir/confirm" ]; then finish ok 0; fi
  echo "no confirmation from the deployer within ${confirm_seconds}s"
  code=101
fi
[ "$code" -eq 0 ] && finish ok 0

echo "activation failed (exit $code)"
if [ "$rollback" = none ] || [ -z "$previous" ] || [ "$previous" = "$toplevel" ]; then
  finish failed "$code"
fi
echo "rolling back to $previous"
if [ "$action" != test ]; then
  nix-env -p "$profile" --rollback || finish rollback-failed "$code"
fi
if "$previous/bin/switch-to-configuration" "$action"; then
  finish rolled-back "$code"
fi
finish rollback-failed "$code"
