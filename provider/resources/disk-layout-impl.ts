import type * as pulumi from "@pulumi/pulumi";
import { renderDeclared } from "../disk";
import { containsUnknown } from "../util/unknown";
import { checkFailures } from "../errors";

/** Bump when the shape of the outputs changes; `read`/`update` migrate older state. */
export const DISK_LAYOUT_STATE_VERSION = 2;

type Props = Record<string, unknown>;

async function outputsFor(inputs: Props): Promise<Props> {
  const { diskoScript: _ref, ...rendered } = await renderDeclared(inputs);
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
  return { changes: next["hash"] !== olds["hash"] || olds["stateVersion"] !== DISK_LAYOUT_STATE_VERSION };
}

export async function create(inputs: Props): Promise<pulumi.dynamic.CreateResult> {
  const outs = await outputsFor(inputs);
  return { id: `layout-${String(outs["hash"]).slice(0, 16)}`, outs };
}

export async function update(_id: string, _olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
  return { outs: await outputsFor(news) };
}
