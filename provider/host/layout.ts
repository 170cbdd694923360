import { renderLayout, resolveLayout, type RenderedLayout } from "../disk";

/** Renders the layout a NixosHost was given (the DiskLayout's declared args). */
export async function renderHostLayout(ref: unknown): Promise<RenderedLayout> {
  const declared = (ref as { declared?: Record<string, unknown> } | undefined)?.declared ?? {};
  return renderLayout(await resolveLayout(declared, "DiskLayout (as NixosHost.diskLayout)"));
}

/** What a NixosHost diffs on: the format hash replaces the host, the mount hash updates it. */
export async function hostLayoutHashes(ref: unknown): Promise<{ layoutHash: string; layoutFormatHash: string; layoutMountHash: string }> {
  const r = await renderHostLayout(ref);
  return { layoutHash: r.hash, layoutFormatHash: r.formatHash, layoutMountHash: r.mountHash };
}
