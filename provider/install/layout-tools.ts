// Where a rendered layout's tools come from during the install. nixos-images' noninteractive
// kexec installer (nixos-anywhere's default) carries only some disk tools; disko's diskoScript
// brings its nodes' packages (`_pkgs`) in its own closure. For a layout rendered here, a tool
// the installer lacks comes from the system being installed: its closure's `sw/bin` (NixOS puts
// cryptsetup there when boot.initrd.luks.devices is set), copied from this machine's store
// into the installer's before anything is touched.
import { realpath } from "node:fs/promises";
import { NixosPulumiError } from "../errors";
import { copyClosure } from "../copy/copy";
import { shellQuote } from "../util/shell-quote";
import type { InstallContext } from "./context";

const STORE_PATH = /^(\/nix\/store\/[0-9a-z]{32}-[^/]+)\//;

/**
 * Makes every tool of `tools` callable by the layout's scripts: returns a directory to put
 * first in PATH (links to the system's copies of the tools the installer lacks), or undefined
 * when the installer has them all. Refuses, before the disks are touched, a tool neither has.
 */
export async function bringLayoutTools(ctx: InstallContext, tools: string[], runDir: string): Promise<string | undefined> {
  const missing = await missingOnTarget(ctx, tools);
  if (missing.length === 0) return undefined;
  const fromSystem = new Map<string, string>();
  const lacking: string[] = [];
  const systemHere = ctx.spec.build.on !== "target" && ctx.toplevel !== "";
  for (const tool of missing) {
    const real = systemHere ? await realpath(`${ctx.toplevel}/sw/bin/${tool}`).catch(() => undefined) : undefined;
    if (real && STORE_PATH.test(real)) fromSystem.set(tool, real);
    else lacking.push(tool);
  }
  if (lacking.length > 0) {
    throw new NixosPulumiError(`the layout needs ${lacking.join(", ")}, which the installer lacks and the system being installed does not carry; nothing was changed`, {
      step: "disko",
      host: ctx.spec.connection.host,
      hint: bringToolsHint(lacking, systemHere),
    });
  }
  const packages = [...new Set([...fromSystem.values()].map((p) => STORE_PATH.exec(p)![1]!))].sort();
  for (const pkg of packages) {
    ctx.progress(`disko: the installer lacks ${[...fromSystem].filter(([, p]) => p.startsWith(pkg + "/")).map(([t]) => t).join(", ")}; copying ${pkg} from the system's closure`);
    await copyClosure(ctx.session, pkg, { progress: ctx.progress });
  }
  const dir = `${runDir}/tools`;
  const links = [...fromSystem].map(([tool, real]) => `ln -s ${shellQuote(real)} ${shellQuote(`${dir}/${tool}`)}`);
  await ctx.session.execOk([`mkdir -m 0700 ${shellQuote(dir)}`, ...links].join(" && "), "disko: tools");
  return dir;
}

/** `command` run with `toolsDir` (if any) first in PATH. */
export function withTools(toolsDir: string | undefined, command: string): string {
  return toolsDir ? `PATH=${shellQuote(toolsDir)}:"$PATH" ${command}` : command;
}

async function missingOnTarget(ctx: InstallContext, tools: string[]): Promise<string[]> {
  if (tools.length === 0) return [];
  // bash's `command -v` also names a file that is not executable: check that it is.
  const out = await ctx.session.execOk(`for t in ${tools.map(shellQuote).join(" ")}; do p=$(command -v "$t" 2>/dev/null) && case "$p" in /*) [ -x "$p" ] ;; esac || echo "$t"; done`, "disko: tools");
  return out.split("\n").map((l) => l.trim()).filter(Boolean);
}

/** How to bring a tool the installer lacks (also for the create script's own refusal). */
export function bringToolsHint(tools: string[], systemHere = true): string {
  // nixos-images' noninteractive.nix disables profiles/base.nix, where installers get cryptsetup.
  const noCryptsetup = tools.includes("cryptsetup")
    ? "nixos-images' noninteractive kexec installer (nixos-anywhere's default) has no cryptsetup; a system with boot.initrd.luks.devices (the DiskLayout's nixosModule sets them) carries it. "
    : "";
  const where = systemHere
    ? "A tool the installer lacks is taken from the system being installed (its sw/bin): add its package to environment.systemPackages"
    : 'With build.on "target" the system is built only after the disks are formatted, so its tools cannot be taken from it: build it on this machine (build.on "local")';
  return `${noCryptsetup}${where}; or let the layout bring its tools: a DiskLayout from your flake's disko script (\`diskoScript: { flake: ".#<host>" }\`), whose closure carries them as with nixos-anywhere; or boot an installer that has them`;
}
