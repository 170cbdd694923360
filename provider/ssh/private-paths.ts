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
 * one else can replace the root-owned entry below it). np_private_dir DIR: DIR itself a real
 * root-owned directory, mode 0700. np_fresh_dir DIR: removes DIR and makes it anew, 0700.
 */
export const PATH_GUARDS = `
np_refuse() { echo "nixos-pulumi refuses to write there: $*" >&2; exit ${REFUSED_EXIT}; }
np_check_dir() {
  set -- "$1" $(stat -L -c '%u %A' "$1" 2>/dev/null)
  [ -n "\${2:-}" ] || np_refuse "$1 does not exist"
  [ "$2" = 0 ] || np_refuse "$1 is owned by uid $2, not root (another account could replace what is written there)"
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
  chmod 700 "$1"
}
np_fresh_dir() {
  case "$1" in */*/*) np_safe_dir "\${1%/*}" ;; esac
  rm -rf "$1" && mkdir -m 700 "$1" || np_refuse "cannot create $1 afresh"
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
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  const q = shellQuote(path);
  return guarded(
    [
      `umask 077`,
      `np_safe_dir ${shellQuote(dir)}`,
      `if [ -d ${q} ] && [ ! -L ${q} ]; then np_refuse ${shellQuote(`${path} is a directory`)}; fi`,
      `np_s=$(mktemp -d ${shellQuote(dir === "/" ? "/.nixos-pulumi-upload.XXXXXXXX" : `${dir}/.nixos-pulumi-upload.XXXXXXXX`)}) || exit 1`,
      `trap 'rm -rf "$np_s"' EXIT; trap 'exit 1' HUP INT TERM PIPE`,
      `cat > "$np_s/f" && chmod ${mode} "$np_s/f" && mv -fT "$np_s/f" ${q}`,
    ].join("\n"),
  );
}

/**
 * Creates a new run directory `<PRIVATE_ROOT>/<purpose>.<random>` (mktemp -d: 0700, root) and
 * prints it; leftovers of this purpose from runs that did not clean up are removed first,
 * except a switch's whose activation still runs (no `done` yet).
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
  // leftover. A switch's directory is one once its activation wrote `done`.
  const keep = purpose === "switch" ? ` && [ -e "$np_old/done" ]` : "";
  return `for np_old in ${PRIVATE_ROOT}/${purpose}.*; do [ -d "$np_old" ] && [ ! -L "$np_old" ]${keep} && rm -rf "$np_old"; done; true`;
}
