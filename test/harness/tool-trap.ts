// A PATH that holds only the programs a layout declares: for each program of the machine's
// PATH, the trap directory has either a link to it (declared) or a stand-in that records its
// name and fails as a missing command would (exit 127). A script run with PATH set to the
// trap alone then finds exactly the declared tools, and the record names every program it
// called without declaring it, fallbacks behind `|| ...` and `command -v` included.
import { shellQuote } from "../../provider/util/shell-quote";

export interface ToolTrap {
  /** The command that runs the shell script at `path` with the trap as its whole PATH. */
  sh(path: string): string;
  /** The undeclared programs called so far, each once, sorted. */
  undeclared(): Promise<string[]>;
  remove(): Promise<void>;
}

const BUILD = `set -eu
trap_dir=$(mktemp -d /tmp/tool-trap.XXXXXX)
mkdir "$trap_dir/bin" "$trap_dir/stand-ins"
: > "$trap_dir/undeclared"
old_ifs=$IFS
IFS=:
for d in $PATH; do
  IFS=$old_ifs
  for f in "$d"/*; do
    n=\${f##*/}
    case "$n" in '' | *[!A-Za-z0-9._+-]*) continue ;; esac
    [ -f "$f" ] && [ -x "$f" ] && [ ! -e "$trap_dir/bin/$n" ] && [ ! -e "$trap_dir/stand-ins/$n" ] || continue
    case " $DECLARED " in
      *" $n "*) ln -s "$f" "$trap_dir/bin/$n" ;;
      *) printf '#!/bin/sh\\necho %s >> %s/undeclared\\necho "%s: not declared by the layout" >&2\\nexit 127\\n' "$n" "$trap_dir" "$n" > "$trap_dir/stand-ins/$n" ;;
    esac
  done
done
IFS=$old_ifs
# chmod on the stand-ins only: through a link it would change the real program.
chmod 755 "$trap_dir"/stand-ins/*
mv "$trap_dir"/stand-ins/* "$trap_dir/bin/"
echo "$trap_dir"`;

/**
 * Builds the trap on the machine `run` reaches, from the PATH `run`'s commands see (give it
 * the PATH the scripts would get, e.g. with brought tools first).
 */
export async function setToolTrap(run: (command: string) => Promise<string>, declared: string[]): Promise<ToolTrap> {
  const dir = (await run(`DECLARED=${shellQuote(declared.join(" "))} sh -c ${shellQuote(BUILD)}`)).trim();
  if (!/^\/tmp\/tool-trap\.[A-Za-z0-9]+$/.test(dir)) throw new Error(`the tool trap was not built: ${dir}`);
  return {
    sh: (path) => `PATH=${dir}/bin /bin/sh ${path}`,
    undeclared: async () => [...new Set((await run(`cat ${dir}/undeclared`)).split("\n").filter(Boolean))].sort(),
    remove: async () => void (await run(`rm -rf ${dir}`)),
  };
}
