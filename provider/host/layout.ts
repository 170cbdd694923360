import { renderDeclared, type RenderedLayout } from "../disk";
import type { SystemSpec } from "../schema/nixos-host";
import { checkSystemAgreesWithLayout } from "./layout-agreement";

/** Renders the layout a NixosHost was given (the DiskLayout's declared args). */
export async function renderHostLayout(ref: unknown): Promise<RenderedLayout> {
  const declared = (ref as { declared?: Record<string, unknown> } | undefined)?.declared ?? {};
  return renderDeclared(declared, "DiskLayout (as NixosHost.diskLayout)");
}

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
