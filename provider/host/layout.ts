import { diskLayoutSchema, renderLayout, type RenderedLayout } from "../disk";
import { parseInputs } from "../schema/zod-errors";

/** Renders the layout a NixosHost was given (the DiskLayout's declared args). */
export function renderHostLayout(ref: unknown): RenderedLayout {
  const declared = (ref as { declared?: unknown } | undefined)?.declared;
  return renderLayout(parseInputs("DiskLayout (as NixosHost.diskLayout)", diskLayoutSchema, declared));
}

export function hostLayoutHash(ref: unknown): string {
  return renderHostLayout(ref).hash;
}
