import * as pulumi from "@pulumi/pulumi";
import { serializedProvider } from "./serialized-provider";
import type { DiskLayoutInput, DiskLayoutSpec } from "../disk";

const diskLayoutProvider = serializedProvider("nixos-pulumi/dist/provider/resources/disk-layout-impl");

export type DiskLayoutArgs =
  | { [K in keyof DiskLayoutInput]: pulumi.Input<DiskLayoutInput[K]> }
  | {
      /** An existing disko .nix file (`{ disko.devices = …; }`), evaluated with the local Nix. */
      diskoFile: pulumi.Input<string>;
    };

/** A declarative disk layout in disko's schema. No side effects of its own. */
export class DiskLayout extends pulumi.dynamic.Resource {
  /** The layout with disko's defaults filled in. */
  declare readonly spec: pulumi.Output<DiskLayoutSpec>;
  /** Content hash of the normalized layout; a NixosHost reinstalls when it changes. */
  declare readonly hash: pulumi.Output<string>;
  /** The equivalent disko Nix expression. */
  declare readonly diskoNix: pulumi.Output<string>;
  /** POSIX sh: wipes, partitions and formats the named disks, mounts under /mnt. */
  declare readonly script: pulumi.Output<string>;
  /** POSIX sh: mounts the existing layout under /mnt (to resume an install). */
  declare readonly mountScript: pulumi.Output<string>;
  /** The NixOS fileSystems / swapDevices the layout implies. */
  declare readonly fileSystems: pulumi.Output<Record<string, { device: string; fsType: string; options: string[] }>>;
  declare readonly swapDevices: pulumi.Output<{ device: string }[]>;
  declare readonly stateVersion: pulumi.Output<number>;
  /**
   * The layout as declared. NixosHost renders and hashes it itself in `check`, so that
   * `pulumi preview` knows a host's layout changed (and shows a replace) even though this
   * resource's outputs are unknown until it is updated.
   */
  declare readonly declared: DiskLayoutArgs;

  constructor(name: string, args: DiskLayoutArgs, opts?: pulumi.CustomResourceOptions) {
    super(diskLayoutProvider, name, {
        ...args,
        spec: undefined,
        hash: undefined,
        diskoNix: undefined,
        script: undefined,
        mountScript: undefined,
        fileSystems: undefined,
        swapDevices: undefined,
        stateVersion: undefined,
      }, opts, "nixos-pulumi", "DiskLayout");
    Object.defineProperty(this, "declared", { value: args, enumerable: false });
  }
}
