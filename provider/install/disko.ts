import { NixosPulumiError } from "../errors";
import { realiseOnTarget } from "../copy/build-on-target";
import { copyClosure } from "../copy/copy";
import { runNix } from "../nix/run-nix";
import type { SshSession } from "../ssh";
import { newRunDir, removeRunDir } from "../ssh/run-dir";
import type { InstallContext } from "./context";
import { refuseLayoutThatDoesNotFit } from "./disk-fit";
import { bringLayoutTools, bringToolsHint, withTools } from "./layout-tools";

/**
 * Written onto the new root once the layout is formatted: lets a retried install resume on
 * the formatted disks. Removed once nixos-install succeeded, so the installed system's /etc
 * keeps nothing of ours and a later reinstall onto the same disks wipes them.
 */
export const LAYOUT_MARKER = "/mnt/etc/nixos-pulumi/layout-hash";

export async function forgetLayoutMarker(session: SshSession): Promise<void> {
  await session.execOk(`rm -f ${LAYOUT_MARKER} && { rmdir $(dirname ${LAYOUT_MARKER}) 2>/dev/null; sync; }`, "install");
}

/**
 * Partitions, formats and mounts the layout under /mnt. If the disks already carry this
 * exact layout (an earlier install of the same layout was interrupted), they are mounted
 * instead of wiped again.
 */
export async function diskoPhase(ctx: InstallContext): Promise<void> {
  const layout = ctx.layout;
  if (!layout) {
    throw new NixosPulumiError("the disko phase needs a diskLayout", { step: "disko", host: ctx.spec.connection.host, hint: "pass a DiskLayout as diskLayout" });
  }
  await refuseLayoutThatDoesNotFit(ctx, "disko", true);
  for (const [keyFile, key] of Object.entries(ctx.spec.install?.diskKeys ?? {})) {
    await ctx.session.upload(keyFile, key, "0600", `install.diskKeys["${keyFile}"]`);
  }
  if (layout.diskoScript) {
    const { storePath, derivation } = layout.diskoScript;
    if (derivation && ctx.spec.build.on === "target") {
      // Built where it runs, into the installer's store, as nixos-anywhere --build-on remote.
      await realiseOnTarget(ctx.session, derivation, storePath, { progress: ctx.progress, step: "disko: build on target" });
    } else {
      if (derivation) await runNix("nix-store", ["--realise", derivation], "diskLayout.diskoScript", "fix the build error of the system's disko script");
      else await runNix("nix-store", ["--check-validity", storePath], "diskLayout.diskoScript", `build the disko script on this machine first (nix build …config.system.build.diskoScript), as nixos-anywhere --store-paths expects`);
      ctx.progress(`disko: copying the system's disko script ${storePath}`);
      await copyClosure(ctx.session, storePath, { progress: ctx.progress });
    }
  }
  // The scripts live in this run's private directory: no other account can swap them.
  const dir = await newRunDir(ctx.session, "install");
  try {
    await runLayoutScripts(ctx, layout, dir);
  } finally {
    await removeRunDir(ctx.session, dir).catch(() => undefined);
  }
}

async function runLayoutScripts(ctx: InstallContext, layout: NonNullable<InstallContext["layout"]>, dir: string): Promise<void> {
  // Before the probe: it opens LUKS and activates VGs, which need the tools too.
  const tools = await bringLayoutTools(ctx, layout.tools, dir);
  const SCRIPT = `${dir}/disko.sh`;
  const MOUNT_SCRIPT = `${dir}/mount.sh`;
  const RELEASE_SCRIPT = `${dir}/release.sh`;
  await ctx.session.uploadFiles([
    { path: SCRIPT, content: layout.script, mode: "0700" },
    { path: MOUNT_SCRIPT, content: layout.mountScript, mode: "0700" },
    { path: RELEASE_SCRIPT, content: layout.releaseScript, mode: "0700" },
  ]);
  // The probe mounts (opening LUKS, activating VGs) and, when the disks hold something else,
  // releases all of it again: the create script then starts from a released disk.
  const resumed = await ctx.session.exec(
    `${withTools(tools, `sh ${MOUNT_SCRIPT}`)} >/dev/null 2>&1 && [ "$(cat ${LAYOUT_MARKER} 2>/dev/null)" = ${layout.formatHash} ] || { ${withTools(tools, `sh ${RELEASE_SCRIPT}`)} >/dev/null 2>&1; exit 1; }`,
  );
  if (resumed.code === 0) {
    ctx.progress("disko: the disks already hold this layout (an earlier install was interrupted); mounted them, nothing wiped");
    return;
  }
  ctx.progress("disko: partitioning, formatting and mounting");
  const result = await ctx.session.exec(withTools(tools, `sh ${SCRIPT}`), {
    onStdout: (chunk) => chunk.toString().split("\n").filter(Boolean).forEach((l) => ctx.progress(`disko: ${l}`)),
  });
  if (result.code !== 0) {
    throw new NixosPulumiError(`the disk layout script failed (exit ${result.code})`, {
      step: "disko",
      host: ctx.spec.connection.host,
      output: (result.stderr || result.stdout).trim().split("\n").slice(-30).join("\n"),
      hint: diskoFailureHint(result.stderr || result.stdout),
    });
  }
  // Synced: a machine that loses power right after this must still find the marker.
  await ctx.session.execOk(`mkdir -p $(dirname ${LAYOUT_MARKER}) && echo ${layout.formatHash} > ${LAYOUT_MARKER} && sync`, "disko");
}

/** What the failed script's own words point at: sgdisk refusing a partition is the layout's geometry, not a device name. */
export function diskoFailureHint(output: string): string {
  const lacks = /this machine lacks ([^,]+), which the layout needs/.exec(output);
  if (lacks) return bringToolsHint(lacks[1]!.trim().split(/\s+/));
  if (/Could not create partition|Could not change partition|Unable to set partition/i.test(output)) {
    return "the layout's partitions do not fit the disk as sgdisk placed them (see its message above); change their sizes, starts or ends in the DiskLayout";
  }
  if (/No such file or directory|does not exist|not a block device/i.test(output)) return "check the layout's device names against `lsblk` on the machine";
  return "see the script's output above; check the layout's device names against `lsblk` on the machine";
}
