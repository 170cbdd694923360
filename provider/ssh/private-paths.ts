// Where the provider writes on a target that other local accounts may share (a rescue
// system, an installer): nothing it writes or runs can be pre-created, replaced or read by
// them. Shell functions prepended to the commands that write; they run as root.
import { shellQuote } from "../util/shell-quote";

/** Root-only (0700) home of the provider's run directories and deploy lock on a target. */
export const PRIVATE_ROOT = "/run/nixos-pulumi";
/** Exit code of a refusal: the message (on stderr) names the path and why. */
export const REFUSED_EXIT = 77;

/**
 * np_safe_dir DIR creates DIR's missing components (root, 0755; mkdir without -p, so a name
 * someone else raced in is never adopted) and checks every component: a symlink only if root
 * owns it; a directory owned by root that no one else can write unless it is sticky (then no
 * one else can replace the root-owned entry below it); np_check_dir leaves the mode of the
 * directory it checked in np_mode. np_private_dir DIR: DIR itself a real
 * root-owned directory, mode 0700. np_fresh_dir DIR: removes DIR and makes it anew, 0700.
 */
export const PATH_GUARDS = `
np_refuse() { echo "nixos-pulumi refuses to write there: $*" >&2; exit ${REFUSED_EXIT}; }
np_check_dir() {
  # shellcheck disable=SC2046 # split on purpose: the owner into $2, the mode into $3
  set -- "$1" $(stat -L -c '%u %A' "$1" 2>/dev/null)
  [ -n "\${2:-}" ] || np_refuse "$1 does not exist"
  [ "$2" = 0 ] || np_refuse "$1 is owned by uid $2, not root (another account could replace what is written there)"
  np_mode=$3
  case "$3" in
    d*) ;;
    *) np_refuse "$1 is not a directory" ;;
  esac
  case "$3" in
    ?????w????|????????w?) case "$3" in *t|*T) ;; *) np_refuse "$1 is writable by other accounts and not sticky ($3)" ;; esac ;;
  esac
}
np_safe_dir() {
  np_p="" np_rest="\${1#/}"
  while [ -n "$np_rest" ]; do
    np_c="\${np_rest%%/*}"
    case "$np_rest" in */*) np_rest="\${np_rest#*/}" ;; *) np_rest="" ;; esac
    case "$np_c" in ""|.) continue ;; ..) np_refuse "$1 has a .. component" ;; esac
    np_p="$np_p/$np_c"
    [ -e "$np_p" ] || [ -L "$np_p" ] || mkdir -m 755 "$np_p" 2>/dev/null || [ -d "$np_p" ] || np_refuse "cannot create $np_p"
    if [ -L "$np_p" ]; then
      np_u=$(stat -c %u "$np_p")
      [ "$np_u" = 0 ] || np_refuse "$np_p is a symlink owned by uid $np_u"
    fi
    np_check_dir "$np_p"
  done
}
np_private_dir() {
  case "$1" in */*/*) np_safe_dir "\${1%/*}" ;; esac
  [ -L "$1" ] && np_refuse "$1 is a symlink"
  [ -e "$1" ] || mkdir -m 700 "$1" || np_refuse "cannot create $1"
  [ -L "$1" ] && np_refuse "$1 is a symlink"
  np_check_dir "$1"
  [ "$np_mode" = drwx------ ] || chmod 700 "$1"
}
np_fresh_dir() {
  case "$1" in */*/*) np_safe_dir "\${1%/*}" ;; esac
  if ! { rm -rf "$1" && mkdir -m 700 "$1"; }; then np_refuse "cannot create $1 afresh"; fi
  [ -L "$1" ] && np_refuse "$1 is a symlink"
  np_check_dir "$1"
}
`;

/** A command, run as root by sh (whatever root's login shell is), with the guards defined first. */
export function guarded(command: string): string {
  return `sh -c ${shellQuote(`${PATH_GUARDS}\n${command}`)}`;
}

/**
 * Writes stdin to `path` as a root-owned file of `mode`: written into a fresh private
 * directory (mktemp -d, 0700) next to it, then renamed into place (rename(2) replaces a name
 * someone else made, symlink or file, and follows none). Refused where another account could
 * replace it afterwards (a directory on the way writable by others and not sticky, or owned by
 * someone else); a sticky shared directory like /tmp is safe this way.
 */
export function uploadCommand(path: string, mode: string): string {
  return guarded(
    [`umask 077`, `trap 'rm -rf "\${np_s:-}"' EXIT; trap 'exit 1' HUP INT TERM PIPE`, ...placeFile(path, `cat > "$np_s/f"`, `chmod ${mode} "$np_s/f"`)].join("\n"),
  );
}

/** One file of uploadFilesCommand: where, its mode, its owner and group (numeric ids), its size. */
export interface UploadedFile {
  path: string;
  mode: string;
  owner?: number;
  group?: number;
  bytes: number;
}

/**
 * uploadCommand for several files in one command (one round trip): stdin carries their
 * contents one after the other, kept first in a private file under PRIVATE_ROOT; each is cut
 * from it into its own fresh private directory beside its destination, given its owner (chown
 * clears setuid and setgid bits, so the mode comes after it) and mode, and renamed into place.
 * `before` runs first (e.g. creating and opening up directories on the way).
 */
export function uploadFilesCommand(files: UploadedFile[], before = ""): string {
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  let offset = 0;
  const placed = files.flatMap((f) => {
    const cut = `tail -c +${offset + 1} "$np_in/all" | head -c ${f.bytes} > "$np_s/f"`;
    offset += f.bytes;
    const owner = f.owner === undefined ? [] : [`chown ${f.owner}:${f.group ?? 0} "$np_s/f"`];
    return placeFile(f.path, cut, ...owner, `chmod ${f.mode} "$np_s/f"`);
  });
  return guarded(
    [
      `umask 077`,
      `np_private_dir ${PRIVATE_ROOT}`,
      `np_in=$(mktemp -d ${PRIVATE_ROOT}/upload.XXXXXXXXXX) || np_refuse "cannot create a directory in ${PRIVATE_ROOT}"`,
      `trap 'rm -rf "$np_in" "\${np_s:-}"' EXIT; trap 'exit 1' HUP INT TERM PIPE`,
      `if ! cat > "$np_in/all" || [ "$(wc -c < "$np_in/all")" -ne ${total} ]; then echo "the files' contents arrived short" >&2; exit 1; fi`,
      ...(before ? [before] : []),
      ...placed,
    ].join("\n"),
  );
}

/**
 * The shell lines that check `path`'s directory, fill "$np_s/f" in a fresh private directory
 * beside it (`fill`, then `finish`), and rename it into place.
 */
function placeFile(path: string, fill: string, ...finish: string[]): string[] {
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  const q = shellQuote(path);
  return [
    `np_safe_dir ${shellQuote(dir)}`,
    `if [ -d ${q} ] && [ ! -L ${q} ]; then np_refuse ${shellQuote(`${path} is a directory`)}; fi`,
    `np_s=$(mktemp -d ${shellQuote(dir === "/" ? "/.nixos-pulumi-upload.XXXXXXXX" : `${dir}/.nixos-pulumi-upload.XXXXXXXX`)}) || exit 1`,
    [fill, ...finish, `mv -fT "$np_s/f" ${q}`, `rmdir "$np_s"`].join(" && ") + " || exit 1",
  ];
}

/**
 * Creates a new run directory `<PRIVATE_ROOT>/<purpose>.<random>` (mktemp -d: 0700, root) and
 * prints it; leftovers of this purpose from runs that did not clean up are removed first,
 * except a switch's whose activation was started and has not finished (activate.sh, no `done` yet).
 */
export function newRunDirCommand(purpose: "install" | "switch"): string {
  return guarded(
    [
      `np_private_dir ${PRIVATE_ROOT}`,
      leftoverCleanup(purpose),
      `mktemp -d ${PRIVATE_ROOT}/${purpose}.XXXXXXXXXX || np_refuse "cannot create a run directory in ${PRIVATE_ROOT}"`,
    ].join("\n"),
  );
}

/**
 * Creates a run directory whose (random) name the deployer chose, as it must know it before any
 * reply: 0700, root, failing if the name exists (its parent is root-only); leftovers removed first.
 */
export function makeRunDirCommand(dir: string, purpose: "install" | "switch"): string {
  return guarded([`np_private_dir ${PRIVATE_ROOT}`, leftoverCleanup(purpose), `mkdir -m 700 ${shellQuote(dir)}`].join("\n"));
}

function leftoverCleanup(purpose: "install" | "switch"): string {
  // An install holds the deploy lock for the whole run: any other install directory is a
  // leftover. A switch's directory is one once its activation wrote `done`, or when it never
  // started one (no activate.sh: its deployer went away before the start).
  const keep = purpose === "switch" ? ` && { [ -e "$np_old/done" ] || [ ! -e "$np_old/activate.sh" ]; }` : "";
  return `for np_old in ${PRIVATE_ROOT}/${purpose}.*; do [ -d "$np_old" ] && [ ! -L "$np_old" ]${keep} && rm -rf "$np_old"; done; true`;
}
