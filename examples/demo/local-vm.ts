// The demo's "cloud VM": a local QEMU VM booted into a rescue system with SSH, as a cloud
// provider's fresh server would be. Its id names the VM; `pulumi destroy` stops it.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { serializedProvider } from "../../provider/resources/serialized-provider";

export interface LocalVmArgs {
  /** Where each VM keeps its disk, console log and pids. */
  stateRoot: pulumi.Input<string>;
  /** The VM test tier's image directory (scripts/build-vm-images.sh): the rescue system it boots first. */
  images: pulumi.Input<string>;
  memoryMiB?: pulumi.Input<number>;
  diskSizeMiB?: pulumi.Input<number>;
}

// Serialized into the state as a few lines and one absolute path: the provider process loads
// the implementation from this checkout's dist/.
const provider = serializedProvider(path.join(__dirname, "local-vm-impl.js"));

export class LocalVm extends pulumi.dynamic.Resource {
  declare readonly sshPort: pulumi.Output<number>;
  declare readonly httpPort: pulumi.Output<number>;
  declare readonly consoleLog: pulumi.Output<string>;

  constructor(name: string, args: LocalVmArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      { memoryMiB: 1536, diskSizeMiB: 2048, ...args, sshPort: undefined, httpPort: undefined, consoleLog: undefined, dir: undefined },
      opts,
      "nixos-pulumi-demo",
      "LocalVm",
    );
  }
}
