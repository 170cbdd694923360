import * as pulumi from "@pulumi/pulumi";
import { serializedProvider } from "./serialized-provider";
import { skipPromiseStackTraces } from "./promise-stack-traces";
import type { DiskLayoutInput, DiskLayoutSpec, NixosDiskConfig } from "../disk";

// Loaded at first use: a program of hosts without disk layouts need not load the disk code.
const disk = (): typeof import("../disk") => require("../disk");

const diskLayoutProvider = serializedProvider("nixos-pulumi/dist/provider/resources/disk-layout-impl");

export type DiskLayoutArgs =
  | { [K in keyof DiskLayoutInput]: pulumi.Input<DiskLayoutInput[K]> }
  | {
      /** An existing disko .nix file (`{ disko.devices = …; }`), evaluated with the local Nix. */
      diskoFile: pulumi.Input<string>;
    }
  | {
      /**
       * The system's own disko script, as nixos-anywhere's `--store-paths` takes it:
       * `{ flake: ".#web1" }` (its config.system.build.diskoScript, evaluated without
       * building) or `{ storePath }`. Copied to the target and run during the install.
       */
      diskoScript: pulumi.Input<{ flake: string } | { storePath: string }>;
    };

/** A declarative disk layout in disko's schema. No side effects of its own. */
export class DiskLayout extends pulumi.dynamic.Resource {
  /** The layout with disko's defaults filled in. */
  declare readonly spec: pulumi.Output<DiskLayoutSpec>;
  /** Content hash of the normalized layout. */
  declare readonly hash: pulumi.Output<string>;
  /** Hash of what only formatting can change (tables, formats, encryption, volumes): a NixosHost reinstalls when it changes. */
  declare readonly formatHash: pulumi.Output<string>;
  /** Hash of how the layout mounts (mountpoints, options, swap, LUKS unlocking): a change is an update, carried by the NixOS module. */
  declare readonly mountHash: pulumi.Output<string>;
  /** The equivalent disko Nix expression (accepted by disko's option types). */
  declare readonly diskoNix: pulumi.Output<string>;
  /** POSIX sh: releases what is stacked on the named disks (or refuses), wipes, partitions and formats them, mounts under /mnt. */
  declare readonly script: pulumi.Output<string>;
  /** POSIX sh: mounts the existing layout under /mnt (to resume an install); idempotent. */
  declare readonly mountScript: pulumi.Output<string>;
  /** POSIX sh: unmounts, deactivates and closes what is stacked on the layout's disks. */
  declare readonly releaseScript: pulumi.Output<string>;
  /** The NixOS fileSystems / swapDevices the layout implies. */
  declare readonly fileSystems: pulumi.Output<Record<string, { device: string; fsType: string; options: string[] }>>;
  declare readonly swapDevices: pulumi.Output<{ device: string }[]>;
  /** Everything the layout needs from the NixOS system (fileSystems, swapDevices, LUKS, initrd modules, grub devices). */
  declare readonly nixos: pulumi.Output<NixosDiskConfig>;
  /** The same as a NixOS module file: write it next to the flake and import it. */
  declare readonly nixosModule: pulumi.Output<string>;
  declare readonly stateVersion: pulumi.Output<number>;
  /**
   * The layout as declared. NixosHost renders and hashes it itself in `check`, so that
   * `pulumi preview` knows a host's layout changed (and shows a replace) even though this
   * resource's outputs are unknown until it is updated.
   */
  declare readonly declared: DiskLayoutArgs;

  constructor(name: string, args: DiskLayoutArgs, opts?: pulumi.CustomResourceOptions) {
    const restoreStackTraces = skipPromiseStackTraces();
    try {
      super(diskLayoutProvider, name, {
        ...args,
        spec: undefined,
        hash: undefined,
        formatHash: undefined,
        mountHash: undefined,
        diskoNix: undefined,
        script: undefined,
        mountScript: undefined,
        releaseScript: undefined,
        fileSystems: undefined,
        swapDevices: undefined,
        nixos: undefined,
        nixosModule: undefined,
        stateVersion: undefined,
      }, opts, "nixos-pulumi", "DiskLayout");
    } finally {
      restoreStackTraces();
    }
    Object.defineProperty(this, "declared", { value: args, enumerable: false });
  }
}

/**
 * The NixOS module a layout implies, at program time: write it next to the flake before the
 * system is evaluated, and import it in the system's configuration (in place of disko's module).
 * Plain values only (no Outputs), since it runs before any resource exists.
 */
export async function diskLayoutNixosModule(args: DiskLayoutInput | { diskoFile: string }): Promise<string> {
  return (await disk().renderDeclared(args as Record<string, unknown>)).nixosModule;
}
