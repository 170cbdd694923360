set -eu
# No udev on rescue systems and test hosts: LVM and device-mapper make their own nodes.
[ -d /run/udev ] || export DM_DISABLE_UDEV=1

# Makes the kernel re-read a disk's partition table.
reread_partitions() {
  partx -u "$1" 2>/dev/null || blockdev --rereadpt "$1" 2>/dev/null || partprobe "$1" 2>/dev/null || true
  if command -v udevadm >/dev/null 2>&1; then udevadm settle 2>/dev/null || true; fi
}

# Prints the device node of partition N of a disk (/dev/vda 2 -> /dev/vda2, /dev/nvme0n1 2 ->
# /dev/nvme0n1p2). Without udev the node may be missing or stale (re-reading a table can give
# a partition new numbers): take its numbers from sysfs and (re)create the node when needed.
partition_device() {
  disk=$(readlink -f "$1"); n=$2
  case "$disk" in *[0-9]) node="${disk}p$n" ;; *) node="$disk$n" ;; esac
  majmin=$(printf '%d:%d' "0x$(stat -L -c %t "$disk")" "0x$(stat -L -c %T "$disk")")
  for part in /sys/dev/block/"$majmin"/*/partition; do
    [ -e "$part" ] && [ "$(cat "$part")" = "$n" ] || continue
    dev=$(cat "${part%/partition}/dev")
    if [ -b "$node" ] && [ "$(printf '%d:%d' "0x$(stat -L -c %t "$node")" "0x$(stat -L -c %T "$node")")" = "$dev" ]; then
      echo "$node"; return 0
    fi
    rm -f "$node"
    mknod "$node" b "${dev%%:*}" "${dev#*:}"
    echo "$node"; return 0
  done
  if [ -b "$node" ]; then echo "$node"; return 0; fi
  echo "partition $n of $1 not found (is the partition table written?)" >&2
  return 1
}

# Loads a filesystem driver the kernel lacks, or says clearly that it cannot mount it.
ensure_filesystem() {
  grep -qw "$1" /proc/filesystems && return 0
  modprobe "$1" 2>/dev/null && return 0
  echo "this kernel cannot mount $1 filesystems (no driver, and modprobe $1 failed)" >&2
  return 1
}

# Unmounts (and swaps off) what lives on a disk before it is wiped (a retried or repeated
# install may have left its partitions mounted under /mnt). Matched by device number, never
# by name: on a test host or a container, another machine's disk can have the same name.
release_disk() {
  disk=$(readlink -f "$1")
  majmin=$(printf '%d:%d' "0x$(stat -L -c %t "$disk")" "0x$(stat -L -c %T "$disk")")
  devices=" $majmin "
  for dev in /sys/dev/block/"$majmin"/*/dev; do [ -e "$dev" ] && devices="$devices$(cat "$dev") "; done
  awk -v devs="$devices" 'index(devs, " " $3 " ") > 0 {print $5}' /proc/self/mountinfo | sort -r | while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp"
  done
  for sw in $(awk 'NR > 1 {print $1}' /proc/swaps 2>/dev/null); do
    [ -b "$sw" ] || continue
    case "$devices" in *" $(printf '%d:%d' "0x$(stat -L -c %t "$sw")" "0x$(stat -L -c %T "$sw")") "*) swapoff "$sw" ;; esac
  done
}
