import type * as pulumi from "@pulumi/pulumi";
import { renderDeclared } from "../disk";
import { containsUnknown } from "../util/unknown";
import { checkFailures } from "../errors";
import { rendersFromStateAlone } from "./layout-declaration";

/**
 * 1: outputs before the disko parity (no formatHash/mountHash, nixos, releaseScript).
 * 2: those outputs, from renderers that may hash a declaration otherwise than this one.
 * 3: this renderer. Bump when the outputs or the renderer's hash of a declaration change:
 * `diff` then compares the old declaration as this version renders it, and `read` (refresh)
 * rewrites the outputs; nothing of a DiskLayout runs on a machine.
 */
export const DISK_LAYOUT_STATE_VERSION = 3;

type Props = Record<string, unknown>;

async function outputsFor(inputs: Props): Promise<Props> {
  const { diskoScript: _ref, tools: _tools, optionalTools: _optional, ...rendered } = await renderDeclared(inputs);
  return { ...inputs, ...rendered, stateVersion: DISK_LAYOUT_STATE_VERSION };
}

export async function check(_olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
  try {
    if (!containsUnknown(news)) await renderDeclared(news);
  } catch (err) {
    return { inputs: news, failures: checkFailures(err) };
  }
  return { inputs: news };
}

export async function diff(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
  if (containsUnknown(news)) return { changes: true };
  const next = await outputsFor(news);
  return { changes: next["hash"] !== (await recordedHash(olds)) };
}

/**
 * The hash the state records, in this version's terms: state of an older version hashed the
 * declaration with an older renderer; a declaration that renders from the state alone is
 * hashed again (others, a diskoFile or a flake's script, keep the recorded hash).
 */
async function recordedHash(olds: Props): Promise<unknown> {
  if (olds["stateVersion"] === DISK_LAYOUT_STATE_VERSION || !rendersFromStateAlone(olds)) return olds["hash"];
  return (await renderDeclared(olds).catch(() => undefined))?.hash ?? olds["hash"];
}

/** Refresh: the outputs rendered again from the recorded declaration (state of older versions migrates here). */
export async function read(id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
  if (props["stateVersion"] === DISK_LAYOUT_STATE_VERSION) return { id, props };
  const outs = await outputsFor(declarationOf(props)).catch(() => undefined);
  return { id, props: outs ?? props };
}

/** What the user declared, from recorded outputs (which hold the inputs next to rendered values). */
function declarationOf(props: Props): Props {
  const out: Props = {};
  for (const key of ["disk", "lvm_vg", "mdadm", "zpool", "nodev", "bcachefs_filesystems", "diskoFile", "diskoScript"]) if (props[key] !== undefined) out[key] = props[key];
  return out;
}

export async function create(inputs: Props): Promise<pulumi.dynamic.CreateResult> {
  const outs = await outputsFor(inputs);
  return { id: `layout-${String(outs["hash"]).slice(0, 16)}`, outs };
}

export async function update(_id: string, _olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
  return { outs: await outputsFor(news) };
}
