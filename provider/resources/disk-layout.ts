import * as pulumi from "@pulumi/pulumi";
import type { DiskLayoutInput, DiskLayoutSpec } from "../disk";

// Serialized into the Pulumi state: keep it to `require` calls by package name, so the
// provider process loads the implementation from the program's node_modules.
const diskLayoutProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return require("nixos-pulumi/dist/provider/resources/disk-layout-impl").check(olds, news);
  },
  async diff(id, olds, news) {
    return require("nixos-pulumi/dist/provider/resources/disk-layout-impl").diff(id, olds, news);
  },
  async create(inputs) {
    return require("nixos-pulumi/dist/provider/resources/disk-layout-impl").create(inputs);
  },
  async update(id, olds, news) {
    return require("nixos-pulumi/dist/provider/resources/disk-layout-impl").update(id, olds, news);
  },
};

export type DiskLayoutArgs = {
  [K in keyof DiskLayoutInput]: pulumi.Input<DiskLayoutInput[K]>;
};

/** A declarative disk layout in disko's schema. No side effects of its own. */
export class DiskLayout extends pulumi.dynamic.Resource {
  declare readonly spec: pulumi.Output<DiskLayoutSpec>;
  declare readonly hash: pulumi.Output<string>;
  declare readonly stateVersion: pulumi.Output<number>;
  /**
   * The layout as declared. NixosHost renders and hashes it itself in `check`, so that
   * `pulumi preview` knows a host's layout changed (and shows a replace) even though this
   * resource's outputs are unknown until it is updated.
   */
  declare readonly declared: DiskLayoutArgs;

  constructor(name: string, args: DiskLayoutArgs, opts?: pulumi.CustomResourceOptions) {
    super(diskLayoutProvider, name, { ...args, spec: undefined, hash: undefined, stateVersion: undefined }, opts, "nixos-pulumi", "DiskLayout");
    Object.defineProperty(this, "declared", { value: args, enumerable: false });
  }
}
