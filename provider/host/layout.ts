import { renderDeclared, type RenderedLayout } from "../disk";
import { InputError } from "../errors";
import type { SystemSpec } from "../schema/nixos-host";
import { checkSystemAgreesWithLayout } from "./layout-agreement";

/** Renders the layout a NixosHost was given (the DiskLayout's declared args). */
export async function renderHostLayout(ref: unknown): Promise<RenderedLayout> {
  const declared = (ref as { declared?: Record<string, unknown> } | undefined)?.declared ?? {};
  const rendered = await renderDeclared(declared, "DiskLayout (as NixosHost.diskLayout)");
  // The system is installed into the layout's "/" (mounted at /mnt): without one it would land
  // in the installer's RAM and the machine would not boot. A flake's disko script mounts its own.
  if (!rendered.diskoScript && !rendered.fileSystems["/"]) throw new InputError("NixosHost", [{ path: "diskLayout", message: NO_ROOT }]);
  return rendered;
}

const NO_ROOT =
  'the layout mounts nothing at "/", and an install puts the system on the layout\'s "/"; give one partition or LV content { type: "filesystem", mountpoint: "/" } ' +
  '(or nodev."/" = { fsType = "tmpfs"; }). A layout of data disks only is a DiskLayout of its own, whose nixosModule the system imports';

/**
 * What a NixosHost diffs on: the format hash replaces the host, the mount hash updates it.
 * With the system known, its fileSystems must agree with the layout's (when it can be
 * evaluated as a NixOS configuration).
 */
export async function hostLayoutHashes(ref: unknown, system?: SystemSpec): Promise<{ layoutHash: string; layoutFormatHash: string; layoutMountHash: string }> {
  return (await hostLayout(ref, system)).hashes;
}

/** The hashes, and the rendered layout they were made of (a create's preview names its disks). */
export async function hostLayout(ref: unknown, system?: SystemSpec): Promise<{ hashes: { layoutHash: string; layoutFormatHash: string; layoutMountHash: string }; rendered: RenderedLayout }> {
  const r = await renderHostLayout(ref);
  if (system) await checkSystemAgreesWithLayout(system, r.fileSystems);
  return { hashes: { layoutHash: r.hash, layoutFormatHash: r.formatHash, layoutMountHash: r.mountHash }, rendered: r };
}
