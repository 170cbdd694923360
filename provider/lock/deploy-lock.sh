# shellcheck shell=sh
# nixos-pulumi deploy lock, run ON THE TARGET over its own SSH channel for the whole
# switch or install. Two parts:
# - a kernel flock on deploy.lock, held by this shell while its deployer is connected: the
#   mutex under which the owner record is read and written;
# - the owner record deploy.lock.owner, "<token> <lease-until> <since> <pid> <holder>": a
#   lease the deployer renews with heartbeats. It outlives a dropped connection until
#   <lease-until>, so a deployer whose connection was cut (its copy resumes, an activation
#   restarted sshd) takes its lock back on a new connection (MODE=resume, same TOKEN) while a
#   second deployer keeps waiting. A released lock keeps its record with <lease-until> 0, so
#   a resuming deployer sees that someone else held the machine meanwhile.
# The protocol is declared in lock/protocol.ts, which prepends: LOCK_DIR, MODE (take|resume),
# TOKEN, WAIT_SECONDS, LEASE_SECONDS, HOLDER (one line), the EXIT_* codes and READ_WHEN_LOCKED
# (set: run read_when_locked, a read-only command of the deployer's, once the lock is held,
# each of its lines printed after "| "). The first line of stdin is BREAK: the token of a
# deployer known dead, or empty, the deployer's answer to "record".
# Prints: "record <lease record>" first, "busy <holder>" when it has to wait, "activation
# <pid> <cmdline>" when an activation started earlier still runs, "waiting" on each round of a
# wait, then the "| " lines of read_when_locked and "locked";
# while held, "held" for each "c" read. Or exits EXIT_REFUSED with "refused <holder>" /
# "refused-activation <pid> <cmdline>", EXIT_LOST with "lost <since> <holder>", EXIT_NO_FLOCK
# with "no-flock".
# Reads, after BREAK, while held: "." heartbeat, "c" heartbeat and confirm, "r" release; EOF
# or no byte for LEASE_SECONDS ends the shell and leaves the lease to run out.
set -u
dir=$LOCK_DIR
lock="$dir/deploy.lock"
owner="$lock.owner"
# Root-only, made by root: no other account can pre-create or replace what is written here.
# (Each process costs 10-30 ms on a busy machine: the shell's own tests and reads where they do.)
[ -d "$dir" ] || mkdir -m 700 "$dir" 2>/dev/null
np_st=""
[ -L "$dir" ] || [ ! -d "$dir" ] || np_st=$(stat -c '%u %a' "$dir")
case "$np_st" in
  "0 700") ;;
  "0 "*) chmod 700 "$dir" || exit "$EXIT_BAD_RUN_DIR" ;;
  *) echo "$dir is not a directory owned by root (remove it; it is recreated)" >&2; exit "$EXIT_BAD_RUN_DIR" ;;
esac
# A flock that cannot run counts as missing (busybox ash names its applets without a path).
flock_cmd=$(command -v flock 2>/dev/null)
case "$flock_cmd" in
  "") echo "no-flock"; exit "$EXIT_NO_FLOCK" ;;
  /*) [ -x "$flock_cmd" ] || { echo "no-flock"; exit "$EXIT_NO_FLOCK"; } ;;
esac
exec 9>>"$lock"
# The lease record as it stands, for the deployer to tell whether its holder is a dead process
# of its own machine; its answer, BREAK, is the first line of stdin. A deployer gone before
# answering ends this shell.
np_rec=""
[ -s "$owner" ] && { IFS= read -r np_rec < "$owner" || true; }
echo "record $np_rec"
IFS= read -r BREAK || exit 0
# The time in seconds, in np_now: bash's EPOCHSECONDS costs no process, another shell runs date.
if [ -n "${BASH_VERSION:-}" ] && [ -n "${EPOCHSECONDS:-}" ]; then now() { np_now=$EPOCHSECONDS; }; else now() { np_now=$(date +%s); }; fi
# When the wait began: the first time the lock was found taken.
start=""
update_waited() { now; [ -n "$start" ] || start=$np_now; waited=$(( np_now - start )); }

o_token="" o_until=0 o_since=0 o_pid="" o_holder=""
read_owner() {
  o_token="" o_until=0 o_since=0 o_pid="" o_holder=""
  if [ -s "$owner" ]; then read -r o_token o_until o_since o_pid o_holder < "$owner" || true; fi
  case "$o_until" in ''|*[!0-9]*) o_until=0 ;; esac
  case "$o_since" in ''|*[!0-9]*) o_since=0 ;; esac
}
# Written whole and renamed: a reader without the flock never sees half a record.
write_owner() { # <lease-until> <since>
  printf '%s %s %s %s %s\n' "$TOKEN" "$1" "$2" "$$" "$HOLDER" > "$owner.$$" && mv -f "$owner.$$" "$owner"
}
reclaimable() { [ -n "$o_token" ] && { [ "$o_token" = "$BREAK" ] || { [ "$MODE" = resume ] && [ "$o_token" = "$TOKEN" ]; }; }; }
free_for_us() {
  [ -z "$o_token" ] && return 0
  reclaimable && return 0
  # Another deployer's record: a resuming deployer lost the machine to it, whatever its state.
  [ "$MODE" = resume ] && return 1
  [ "$o_until" -eq 0 ] || { now; [ "$o_until" -le "$np_now" ]; }
}

# While waiting: a deployer that went away (killed, its connection closed) must not be given
# the lock later. Writing to its closed channel ends this shell (SIGPIPE, or the failed echo).
still_wanted() { echo waiting || exit 0; }

announced=""
while :; do
  if flock -n 9; then
    read_owner
    free_for_us && break
    flock -u 9
  else
    read_owner
    # The flock is held by a shell of a deployer that is ours (resuming) or dead, on a
    # connection the target has not yet seen die: end that shell (only if it holds this lock).
    if reclaimable && [ -n "$o_pid" ] && [ "$(readlink "/proc/$o_pid/fd/9" 2>/dev/null)" = "$lock" ]; then
      kill -9 "$o_pid" 2>/dev/null
      sleep 0.2 9>&-
      continue
    fi
  fi
  if [ "$MODE" = resume ] && [ -n "$o_token" ] && [ "$o_token" != "$TOKEN" ]; then
    echo "lost $o_since $o_holder"
    exit "$EXIT_LOST"
  fi
  # A record whose lease is over is stale (a holder that has just taken the flock writes its
  # own a moment later): the holder is named once a live record shows it.
  live=""
  now
  [ "$o_until" -gt "$np_now" ] && live="$o_holder"
  update_waited
  if [ -z "$announced" ] && { [ -n "$live" ] || [ "$waited" -ge 2 ]; }; then echo "busy $live"; announced=1; fi
  if [ "$waited" -ge "$WAIT_SECONDS" ]; then
    echo "refused $live"
    exit "$EXIT_REFUSED"
  fi
  still_wanted
  sleep 0.2 9>&-
done

# A deployer killed mid-switch released the lock, but its detached activation (and magic
# rollback watchdog) may still run: never start a second activation next to it. A resuming
# deployer's own activation may be the one running: it is not waited for.
# Only a run directory without its verdict can belong to a running activation (activate.sh
# writes `done` last; directories with it are the only ones removed): without one, no process
# is looked for (and no subshell started).
open_run_dir() {
  for np_a in "$dir"/*/activate.sh; do [ -e "$np_a" ] && [ ! -e "${np_a%/activate.sh}/done" ] && return 0; done
  return 1
}
# Called once open_run_dir found such a directory.
running_activation() {
  running=$(grep -lsz '^/run/nixos-pulumi/[^/]*/activate\.sh$' /proc/[0-9]*/cmdline | while IFS= read -r f; do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    [ "$pid" = "$$" ] && continue
    echo "$pid $(tr '\0' ' ' < "$f" 2>/dev/null)"
    break
  done)
  [ -n "$running" ] && echo "$running"
}
if [ "$MODE" = take ]; then
  announced=""
  while open_run_dir && found=$(running_activation); do
    if [ -z "$announced" ]; then echo "activation $found"; announced=1; fi
    update_waited
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
      echo "refused-activation $found"
      exit "$EXIT_REFUSED"
    fi
    still_wanted
    sleep 0.2 9>&-
  done
fi

# The last moment a deployer that went away during the wait could be handed the lock.
still_wanted
now
taken=$np_now
since=$taken
if [ "$MODE" = resume ] && [ "$o_token" = "$TOKEN" ]; then since=$o_since; fi
write_owner $(( taken + LEASE_SECONDS )) "$since"
if [ -n "$READ_WHEN_LOCKED" ]; then
  (set +u; read_when_locked) 2>/dev/null | while IFS= read -r np_l || [ -n "$np_l" ]; do printf '| %s\n' "$np_l"; done
fi
echo locked
while beat=$(timeout "$LEASE_SECONDS" dd bs=1 count=1 2>/dev/null 9>&-) && [ -n "$beat" ]; do
  case "$beat" in
    r) write_owner 0 "$since"; exit 0 ;;
    c) now; write_owner $(( np_now + LEASE_SECONDS )) "$since"; echo held ;;
    *) now; write_owner $(( np_now + LEASE_SECONDS )) "$since" ;;
  esac
done
# The connection dropped or went silent: the record stays, and the lease runs out on its own.
