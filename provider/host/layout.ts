import { renderLayout, resolveLayout, type RenderedLayout } from "../disk";

/** Renders the layout a NixosHost was given (the DiskLayout's declared args). */
export async function renderHostLayout(ref: unknown): Promise<RenderedLayout> {
  const declared = (ref as { declared?: Record<string, unknown> } | undefined)?.declared ?? {};
  return renderLayout(await resolveLayout(declared, "DiskLayout (as NixosHost.diskLayout)"));
}

export async function hostLayoutHash(ref: unknown): Promise<string> {
  return (await renderHostLayout(ref)).hash;
}
