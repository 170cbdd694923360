# nixos-pulumi deploy lock, run ON THE TARGET over its own SSH channel for the whole
# switch or install. The lock is a kernel flock held by this shell: it ends when the
# deployer releases it (closes stdin), when the deployer's connection closes (a killed
# deployer), or when the deployer sends no heartbeat for HEARTBEAT_SECONDS (a deployer that
# vanished without closing its connection). There is no lock file to go stale.
# Prepended by the deployer: WAIT_SECONDS, HEARTBEAT_SECONDS, HOLDER (who holds it, one line).
# Prints: "busy <holder>" when it has to wait, "activation <pid> <cmdline>" when an
# activation started earlier still runs, then "locked"; or exits 75 with "refused ...".
set -u
dir=/run/nixos-pulumi
lock="$dir/deploy.lock"
mkdir -p "$dir" && chmod 700 "$dir" || exit 70
if ! command -v flock >/dev/null 2>&1; then echo "no-flock"; exit 69; fi
exec 9>>"$lock"
start=$(date +%s)
if ! flock -n 9; then
  echo "busy $(cat "$lock.holder" 2>/dev/null)"
  if ! flock -w "$WAIT_SECONDS" 9; then
    echo "refused $(cat "$lock.holder" 2>/dev/null)"
    exit 75
  fi
fi

# A deployer killed mid-switch released the lock, but its detached activation (and magic
# rollback watchdog) may still run: never start a second activation next to it.
running_activation() {
  for f in $(grep -lsz '^/run/nixos-pulumi/[^/]*/activate\.sh$' /proc/[0-9]*/cmdline); do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    [ "$pid" = "$$" ] && continue
    echo "$pid $(tr '\0' ' ' < "$f" 2>/dev/null)"
    return 0
  done
  return 1
}
announced=""
while found=$(running_activation); do
  if [ -z "$announced" ]; then echo "activation $found"; announced=1; fi
  if [ $(( $(date +%s) - start )) -ge "$WAIT_SECONDS" ]; then
    echo "refused-activation $found"
    exit 75
  fi
  sleep 0.2
done

printf '%s\n' "$HOLDER" > "$lock.holder"
echo locked
# Hold until the deployer closes stdin or stops sending heartbeats.
while beat=$(timeout "$HEARTBEAT_SECONDS" dd bs=1 count=1 2>/dev/null) && [ -n "$beat" ]; do :; done
: > "$lock.holder"
