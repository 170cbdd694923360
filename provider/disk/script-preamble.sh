# shellcheck shell=sh
# Each function names the programs it calls on a "# tools:" line, and on "# optional tools:"
# those it calls only as a fallback, when the machine has them, or for devices (LVM, LUKS)
# only a machine with them has. provider/disk/preamble.ts reads these lines: the create
# script requires the tools (require_tools), the install brings those the installer lacks.
# The shell's builtins (echo, printf, test, read, command) need none.
set -eu
# No udev on rescue systems and test hosts: LVM and device-mapper make their own nodes.
[ -d /run/udev ] || export DM_DISABLE_UDEV=1

# Makes the kernel re-read a disk's partition table.
# optional tools: partx blockdev partprobe udevadm
reread_partitions() {
  partx -u "$1" 2>/dev/null || blockdev --rereadpt "$1" 2>/dev/null || partprobe "$1" 2>/dev/null || true
  if command -v udevadm >/dev/null 2>&1; then udevadm settle 2>/dev/null || true; fi
}

# Prints the device node of partition N of a disk (/dev/vda 2 -> /dev/vda2, /dev/nvme0n1 2 ->
# /dev/nvme0n1p2). Without udev the node may be missing or stale (re-reading a table can give
# a partition new numbers): take its numbers from sysfs and (re)create the node when needed.
# tools: readlink cat rm mknod
partition_device() {
  disk=$(readlink -f "$1"); n=$2
  case "$disk" in *[0-9]) node="${disk}p$n" ;; *) node="$disk$n" ;; esac
  for part in /sys/dev/block/"$(majmin "$disk")"/*/partition; do
    [ -e "$part" ] || continue
    [ "$(cat "$part")" = "$n" ] || continue
    dev=$(cat "${part%/partition}/dev")
    if [ -b "$node" ] && [ "$(majmin "$node")" = "$dev" ]; then
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
# tools: grep
# optional tools: modprobe
ensure_filesystem() {
  grep -qw "$1" /proc/filesystems && return 0
  modprobe "$1" 2>/dev/null && return 0
  echo "this kernel cannot mount $1 filesystems (no driver, and modprobe $1 failed)" >&2
  return 1
}

# MAJ:MIN of a block device (sysfs and /proc/self/mountinfo speak in these).
# tools: stat
majmin() {
  printf '%d:%d' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")"
}

# Mounts a filesystem unless the target already has it on top (a repeated mount script is a
# no-op). Compared by device number; btrfs mounts have an anonymous one (0:N), so for those the
# source device and subvolume are compared.
# tools: findmnt tail tr sed mkdir mount
mount_once() { # fstype device target options
  ensure_filesystem "$1"
  top=$(findmnt -rn -o MAJ:MIN,FSTYPE,SOURCE -M "$3" 2>/dev/null | tail -n 1)
  if [ -n "$top" ]; then
    # shellcheck disable=SC2086 # split on purpose: MAJ:MIN FSTYPE SOURCE become $5 $6 $7
    set -- "$@" $top
    if [ "$5" = "$(majmin "$2")" ]; then return 0; fi
    if [ "$6" = btrfs ] && [ "$1" = btrfs ]; then
      src=${7%%\[*}; sub=${7#"$src"}; sub=${sub#[}; sub=${sub%]}
      want=$(printf '%s\n' "$4" | tr ',' '\n' | sed -n 's/^subvol=//p' | tail -n 1)
      [ -b "$src" ] && [ "$(majmin "$src")" = "$(majmin "$2")" ] && [ "/${sub#/}" = "/${want#/}" ] && return 0
    fi
  fi
  mkdir -p "$3"
  mount -t "$1" -o "$4" "$2" "$3"
}

# Mounts a filesystem without a device (tmpfs, ...) unless the target already has that type on top.
# tools: findmnt tail mkdir mount
mount_nodev() { # fstype device target options
  [ "$(findmnt -rn -o FSTYPE -M "$3" 2>/dev/null | tail -n 1)" = "$1" ] && return 0
  mkdir -p "$3"
  mount -t "$1" -o "$4" "$2" "$3"
}

# True when the device-mapper device $1 is open on $2; a mapping of that name on another
# device stops the script (opening ours would fail, or the wrong disk would be used).
# tools: cat
luks_is_open() { # name device
  want=$(majmin "$2")
  for d in /sys/block/dm-*; do
    [ -e "$d/dm/name" ] || continue
    [ "$(cat "$d/dm/name")" = "$1" ] || continue
    for s in "$d"/slaves/*; do [ -e "$s/dev" ] && [ "$(cat "$s/dev")" = "$want" ] && return 0; done
    echo "a device-mapper device named $1 is open on another device than $2; close it (cryptsetup close $1) or rename the luks node" >&2
    exit 1
  done
  return 1
}

# The UUID of the volume group an LV's device-mapper UUID ("LVM-" + VG UUID + LV UUID, 32
# characters each) names, written as LVM prints it (6-4-4-4-4-4-6).
# tools: cut sed
lvm_vg_uuid() { # dm-uuid
  printf '%s\n' "$1" | cut -c5-36 | sed 's/^\(......\)\(....\)\(....\)\(....\)\(....\)\(....\)\(......\)$/\1-\2-\3-\4-\5-\6-\7/'
}

# Activates volume group $1 from the layout's physical volumes only: LVM sees no other
# device (--devices), so another disk's VG of the same name is neither activated nor mounted.
# One of that name already active from other devices stops the script: its device-mapper
# names (<vg>-<lv>) are the ones ours would take. Its vgchange is declared by the lvm_vg node,
# whose layouts alone call it.
# tools: cat sed basename
vg_activate() { # vg pv...
  vg=$1; shift
  mine=" "; devices=""
  for pv in "$@"; do mine="$mine$(majmin "$pv") "; devices="$devices --devices $pv"; done
  for d in /sys/block/dm-*; do
    [ -e "$d/dm/uuid" ] || continue
    case "$(cat "$d/dm/uuid")" in LVM-*) ;; *) continue ;; esac
    name=$(cat "$d/dm/name")
    [ "$(printf '%s' "$name" | sed 's/--/ /g; s/-.*//; s/ /-/g')" = "$vg" ] || continue
    for sl in "$d"/slaves/*; do
      [ -e "$sl/dev" ] || continue
      case "$mine" in *" $(cat "$sl/dev") "*) continue ;; esac
      echo "a volume group named $vg is active from another disk ($name on $(basename "$sl")); deactivate it (vgchange -an --select vg_uuid=$(lvm_vg_uuid "$(cat "$d/dm/uuid")")) or rename the layout's lvm_vg $vg" >&2
      exit 1
    done
  done
  # shellcheck disable=SC2086 # one --devices option per physical volume
  vgchange -ay $devices "$vg" >/dev/null
}

# Stops before anything changes when a tool the layout needs is missing (a half-formatted
# disk is worse than none).
require_tools() { # tool...
  missing=""
  # bash's command -v also names a file that is not executable.
  for t in "$@"; do p=$(command -v "$t" 2>/dev/null) && case "$p" in /*) [ -x "$p" ] ;; esac || missing="$missing $t"; done
  [ -z "$missing" ] && return 0
  echo "this machine lacks$missing, which the layout needs; nothing was changed" >&2
  exit 1
}

# Stops before anything changes when a key file the layout formats with is missing.
require_files() { # file...
  for f in "$@"; do
    [ -r "$f" ] && continue
    echo "the key file $f is missing on this machine; nothing was changed (give it in NixosHost install.diskKeys, keyed by this path)" >&2
    exit 1
  done
}

# A path as /proc/self/mountinfo and /proc/swaps write it: space, tab and backslash as octal
# escapes (\040, \011, \134). A newline (\012) is left escaped; callers refuse it.
# tools: sed
unescape_mount_path() {
  printf '%s\n' "$1" | sed 's/\\040/ /g; s/\\011/\t/g; s/\\134/\\/g'
}

# Releases everything stacked on the layout's disks before they are wiped: filesystems
# mounted from them or from device-mapper devices on them, swap, LVM volume groups whose
# PVs are on them, open LUKS mappings on them. Everything is checked first; on any doubt it
# stops with a message before changing anything. Matched by device number, never by name:
# on a test host or a container another machine's disk can have the same name.
# LAYOUT_LUKS / LAYOUT_VGS: the names the layout creates, which must not be in use elsewhere.
# tools: readlink cat basename awk sort umount swapoff
# optional tools: pvs vgchange cryptsetup
release_disks() { # disk...
  stack=" "
  for disk in "$@"; do
    mm=$(majmin "$(readlink -f "$disk")")
    stack="$stack$mm "
    for dev in /sys/dev/block/"$mm"/*/dev; do [ -e "$dev" ] && stack="$stack$(cat "$dev") "; done
  done
  held=""   # device-mapper (or md) devices stacked on the disks, lower layers first
  grown=1
  while [ "$grown" = 1 ]; do
    grown=0
    for mm in $stack; do
      for h in /sys/dev/block/"$mm"/holders/*; do
        [ -e "$h" ] || continue
        hn=$(basename "$h")
        case " $held " in *" $hn "*) continue ;; esac
        held="$held $hn"; stack="$stack$(cat "/sys/block/$hn/dev") "; grown=1
      done
    done
  done
  in_stack() { case "$stack" in *" $1 "*) return 0 ;; esac; return 1; }

  # Checks: nothing below changes a byte.
  # Volume groups are told apart by UUID: two disks can hold VGs of the same name, and LVM
  # refuses a name that is not unique ("Multiple VGs found with the same name").
  vgs_here=""   # UUIDs of the VGs stacked on the disks
  add_vg() { case " $vgs_here " in *" $1 "*) ;; *) vgs_here="$vgs_here $1" ;; esac; }
  for hn in $held; do
    uuid=$(cat "/sys/block/$hn/dm/uuid" 2>/dev/null || true)
    name=$(cat "/sys/block/$hn/dm/name" 2>/dev/null || echo "$hn")
    case "$uuid" in
      CRYPT-*) ;;
      LVM-*) add_vg "$(lvm_vg_uuid "$uuid")" ;;
      *) echo "$name ($hn) is stacked on the layout's disks and is neither LUKS nor LVM; remove it by hand before installing" >&2; exit 1 ;;
    esac
  done
  if command -v pvs >/dev/null 2>&1; then
    pv_list=$(pvs --noheadings -o pv_name,vg_name,vg_uuid 2>/dev/null || true)
    while read -r pv vg vu; do
      [ -n "$vu" ] && [ -b "$pv" ] && in_stack "$(majmin "$pv")" && add_vg "$vu"
    done <<PVS
$pv_list
PVS
    while read -r pv vg vu; do
      [ -n "$vu" ] || continue
      case " $vgs_here " in
        *" $vu "*)
          if [ ! -b "$pv" ] || ! in_stack "$(majmin "$pv")"; then
            echo "volume group $vg also has a physical volume outside the layout's disks ($pv); wiping would break it. Remove it from the VG (vgreduce) or add that disk to the layout" >&2
            exit 1
          fi ;;
        *)
          for name in ${LAYOUT_VGS:-}; do
            [ "$name" = "$vg" ] || continue
            echo "a volume group named $vg already exists on another disk of this machine ($pv); rename the layout's lvm_vg $vg (vgcreate would fail after the wipe)" >&2
            exit 1
          done ;;
      esac
    done <<PVS
$pv_list
PVS
  fi
  for name in ${LAYOUT_LUKS:-}; do
    for d in /sys/block/dm-*; do
      [ -e "$d/dm/name" ] || continue
      [ "$(cat "$d/dm/name")" = "$name" ] || continue
      in_stack "$(cat "$d/dev")" && continue
      echo "a device-mapper device named $name is open on another disk; close it (cryptsetup close $name) or rename the luks node" >&2
      exit 1
    done
  done
  # btrfs mounts show an anonymous device number (0:N): only those are matched by their
  # source device (a name can be another machine's in a container, see above). Paths are
  # kept as mountinfo escapes them (\040 for a space), one per line, until they are used.
  mounts=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { print $3, $5, $(i + 2); break } }' /proc/self/mountinfo |
    while read -r mm mp src; do
      if in_stack "$mm"; then echo "$mp"
      elif [ "${mm%%:*}" = 0 ] && [ -b "$(unescape_mount_path "$src")" ] && in_stack "$(majmin "$(unescape_mount_path "$src")")"; then echo "$mp"; fi
    done | sort -r)
  while IFS= read -r mp; do
    [ -n "$mp" ] || continue
    if [ "$mp" = / ]; then echo "the running system's / is on the layout's disks; boot an installer (kexec) first" >&2; exit 1; fi
    case "$mp" in *'\012'*) echo "a mount point on the layout's disks has a newline in its name ($mp); unmount it by hand before installing" >&2; exit 1 ;; esac
  done <<MOUNTS
$mounts
MOUNTS

  # Release, top down. A busy filesystem stops the script: a lazy unmount would leave it
  # in use while its disk is wiped.
  while IFS= read -r mp; do
    [ -n "$mp" ] || continue
    path=$(unescape_mount_path "$mp")
    umount "$path" 2>/dev/null && continue
    echo "$path is busy (a process uses it: fuser -vm '$path' names it); stop that process and run again; nothing was wiped" >&2
    exit 1
  done <<MOUNTS
$mounts
MOUNTS
  awk 'NR > 1 {print $1}' /proc/swaps 2>/dev/null | while IFS= read -r sw; do
    sw=$(unescape_mount_path "$sw")
    if [ -b "$sw" ] && in_stack "$(majmin "$sw")"; then swapoff "$sw"; fi
  done
  order=""; for hn in $held; do order="$hn $order"; done
  for hn in $order; do
    [ -e "/sys/block/$hn/dm/uuid" ] || continue
    uuid=$(cat "/sys/block/$hn/dm/uuid"); name=$(cat "/sys/block/$hn/dm/name")
    case "$uuid" in
      LVM-*) vgchange -an --select "vg_uuid=$(lvm_vg_uuid "$uuid")" >/dev/null ;;
      CRYPT-*) cryptsetup close "$name" ;;
    esac
  done
  # VGs with no LV active need nothing; a PV inside a LUKS volume just closed is gone anyway.
  for vu in $vgs_here; do vgchange -an --select "vg_uuid=$vu" >/dev/null 2>&1 || true; done
}
