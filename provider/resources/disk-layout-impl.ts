import type * as pulumi from "@pulumi/pulumi";
import { diskLayoutSchema, renderLayout } from "../disk";
import { parseInputs } from "../schema/zod-errors";
import { containsUnknown } from "./unknown";

/** Bump when the shape of the outputs changes; `read`/`update` migrate older state. */
export const DISK_LAYOUT_STATE_VERSION = 1;

const RESOURCE = "DiskLayout";

function layoutInputs(inputs: Record<string, unknown>) {
  const { disk, lvm_vg } = inputs;
  return lvm_vg === undefined ? { disk } : { disk, lvm_vg };
}

function outputsFor(inputs: Record<string, unknown>) {
  const rendered = renderLayout(parseInputs(RESOURCE, diskLayoutSchema, layoutInputs(inputs)));
  return { ...inputs, ...rendered, stateVersion: DISK_LAYOUT_STATE_VERSION };
}

export async function check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
  if (!containsUnknown(news)) parseInputs(RESOURCE, diskLayoutSchema, layoutInputs(news));
  return { inputs: news };
}

export async function diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.DiffResult> {
  if (containsUnknown(news)) return { changes: true };
  const next = outputsFor(news);
  return { changes: next.hash !== olds["hash"] || olds["stateVersion"] !== DISK_LAYOUT_STATE_VERSION };
}

export async function create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
  const outs = outputsFor(inputs);
  return { id: `layout-${outs.hash.slice(0, 16)}`, outs };
}

export async function update(_id: string, _olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.UpdateResult> {
  return { outs: outputsFor(news) };
}
