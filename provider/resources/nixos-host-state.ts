// NixosHost state written by earlier versions of this package, read in the shape this version
// writes, without SSH. Applied to the old outputs in diff, update and read, so a provider
// upgrade alone never previews as a change and never switches or reinstalls a host.
// Fixtures of each earlier shape: test/fixtures/state/.
import { rendersFromStateAlone } from "./layout-declaration";

/**
 * 1: every state before ownership records (its shape grew: __resourceName, needsReboot,
 *    layoutFormatHash/layoutMountHash, __stack), layout hashes from older renderers.
 * 2: __urn (the manager recorded on the machine), managedBy; layout hashes of this renderer.
 * Bump when the shape of the outputs or the meaning of a recorded hash changes, and migrate here.
 */
export const NIXOS_HOST_STATE_VERSION = 2;

type Props = Record<string, unknown>;

/** Marks layout hashes an older version recorded that this one cannot recompute (see host/diff.ts). */
export const OLDER_LAYOUT_HASHES = "__olderLayoutHashes";

const layout = (): typeof import("../host/layout") => require("../host/layout");

/** Renamed hidden inputs: the old name → the current one. */
const RENAMED: Record<string, string> = { resourceName: "__resourceName", stack: "__stack" };

export async function migrateHostState(props: Props): Promise<Props> {
  const version = typeof props["stateVersion"] === "number" ? props["stateVersion"] : 0;
  if (version >= NIXOS_HOST_STATE_VERSION) return props;
  const out: Props = { ...props };
  for (const [old, current] of Object.entries(RENAMED)) {
    if (out[old] !== undefined && out[current] === undefined) out[current] = out[old];
    delete out[old];
  }
  if (out["needsReboot"] === undefined) out["needsReboot"] = false;
  if (out["diskLayout"] !== undefined) Object.assign(out, await layoutHashesNow(out));
  if (out["diskLayout"] !== undefined && !rendersFromStateAlone((out["diskLayout"] as { declared?: unknown }).declared)) {
    // Hashes an older renderer made of a file or flake: diff never reinstalls on them alone.
    out[OLDER_LAYOUT_HASHES] = true;
  }
  out["stateVersion"] = NIXOS_HOST_STATE_VERSION;
  return out;
}

/**
 * The recorded layout hashes came from an older renderer (its defaults and normal form have
 * changed since): a self-contained declaration is hashed again by this one, so an unchanged
 * layout compares equal instead of previewing as a reinstall. Others keep what was recorded.
 */
async function layoutHashesNow(props: Props): Promise<Props> {
  const declared = (props["diskLayout"] as { declared?: unknown } | undefined)?.declared;
  if (!rendersFromStateAlone(declared)) return {};
  try {
    return await layout().hostLayoutHashes(props["diskLayout"]);
  } catch {
    // This version refuses the old declaration: the next check says why; keep the old hashes.
    return {};
  }
}
