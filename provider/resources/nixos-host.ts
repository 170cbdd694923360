import * as pulumi from "@pulumi/pulumi";
import { serializedProvider } from "./serialized-provider";
import type { NixosHostInput } from "../schema/nixos-host";
import type { DiskLayout } from "./disk-layout";
import { markConnectionSecrets, markInstallSecrets, markKeySecrets } from "./secret-inputs";
import { evaluateInProgram } from "../nix/evaluation-input";
import { refusedSystemFields } from "./system-secrets";
import { skipPromiseStackTraces } from "./promise-stack-traces";

const nixosHostProvider = serializedProvider("nixos-pulumi/dist/provider/resources/nixos-host-impl");

/** The type pulumi.dynamic.Resource gives NixosHost ("pulumi-nodejs:dynamic/<module>:<type>"), for its URN. */
const NIXOS_HOST_TYPE = "pulumi-nodejs:dynamic/nixos-pulumi:NixosHost";

type Inputs<T> = pulumi.Input<{ [K in keyof T]: pulumi.Input<T[K]> }>;

/** A jump host; the same fields as @pulumi/command's remote.ProxyConnectionArgs. */
export interface ProxyConnectionArgs {
  host: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  user?: pulumi.Input<string>;
  privateKey?: pulumi.Input<string>;
  privateKeyPassword?: pulumi.Input<string>;
  password?: pulumi.Input<string>;
  agentSocketPath?: pulumi.Input<string>;
  /** Expected host key ("ssh-ed25519 AAAA..."); when left out, the key seen first is pinned. */
  hostKey?: pulumi.Input<string>;
  dialErrorLimit?: pulumi.Input<number>;
  perDialTimeout?: pulumi.Input<number>;
}

/** How to reach the machine; @pulumi/command's remote.ConnectionArgs plus `sudo`. */
export interface ConnectionArgs extends ProxyConnectionArgs {
  proxy?: pulumi.Input<ProxyConnectionArgs>;
  /** Run privileged commands through sudo (needed when user is not root). */
  sudo?: pulumi.Input<boolean>;
  /** The user's password for a sudo that asks for one; kept secret, given to `sudo -S` on stdin. */
  sudoPassword?: pulumi.Input<string>;
}

export interface NixosHostArgs {
  /** How to reach the machine; the same shape as @pulumi/command's remote.ConnectionArgs. */
  connection: pulumi.Input<ConnectionArgs>;
  /**
   * The NixOS system: { flake: ".#web1", specialArgs? }, { expression: { file, attr, args } } or
   * { storePath }. specialArgs (JSON values, e.g. { address: vm.ipv4 }) become module
   * arguments of the flake's configuration; secrets are refused (they would be in the Nix store).
   */
  system: Inputs<NixosHostInput["system"]>;
  /** Install onto these disks on create. Leave out to adopt a machine that already runs NixOS. */
  diskLayout?: DiskLayout;
  install?: Inputs<NonNullable<NixosHostInput["install"]>>;
  switch?: Inputs<NonNullable<NixosHostInput["switch"]>>;
  build?: Inputs<NonNullable<NixosHostInput["build"]>>;
  /** Targets substitute the closure from this Nix binary cache; the deployer pushes it there once per run. */
  binaryCache?: Inputs<NonNullable<NixosHostInput["binaryCache"]>>;
  /** How closures are sent: { compress: "auto" | "zstd" | "gzip" | "none" } (auto: when the link is slow). */
  copy?: Inputs<NonNullable<NixosHostInput["copy"]>>;
  /** Any change of these values reinstalls the machine, e.g. { vm: server.id }. */
  reinstallTriggers?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /**
   * Take the machine over from the stack that manages it now ("<project>/<stack>", as the
   * refusal names it). Without it, a machine another stack manages is refused before anything changes.
   */
  takeOver?: pulumi.Input<string>;
  /**
   * Secrets written to the machine as files, never through the Nix store: name → { content
   * or file, destDir ("/run/keys"), owner, group ("root"), mode ("0600"), uploadAt
   * ("pre-activation" | "post-activation") }. Written when they change, removed when dropped;
   * a change of keys alone does not activate the system again. Kept secret in the state.
   */
  keys?: pulumi.Input<Record<string, pulumi.Input<KeyArgs>>>;
}

/** One key of NixosHostArgs.keys. */
export interface KeyArgs {
  /** The secret itself. */
  content?: pulumi.Input<string>;
  /** Or a file on the deploying machine, read at every preview and up (its content never enters the state). */
  file?: pulumi.Input<string>;
  /** The key is written to <destDir>/<name>; "/run/keys" (in memory on NixOS: empty after a reboot) by default. */
  destDir?: pulumi.Input<string>;
  /** User and group names, resolved on the machine; "root" by default. */
  owner?: pulumi.Input<string>;
  group?: pulumi.Input<string>;
  /** Octal mode, "0600" by default. */
  mode?: pulumi.Input<string>;
  /** "pre-activation" (default: before switch-to-configuration runs) or "post-activation" (after it succeeded). */
  uploadAt?: pulumi.Input<"pre-activation" | "post-activation">;
}

/** One machine running one NixOS system closure, installed and kept converged over SSH. */
export class NixosHost extends pulumi.dynamic.Resource {
  /** The toplevel store path the host should run (evaluated, not built, during preview). */
  declare readonly toplevel: pulumi.Output<string>;
  /** What /run/current-system pointed to when last read. */
  declare readonly currentSystem: pulumi.Output<string>;
  declare readonly bootedSystem: pulumi.Output<string>;
  declare readonly generation: pulumi.Output<number>;
  /** The SSH host key seen, pinned for every later connection. */
  declare readonly hostKey: pulumi.Output<string>;
  /**
   * After an install: the public ed25519 host key written into the installed system
   * (install.hostKeys', or generated for that install), e.g. for known_hosts or ssh-to-age.
   */
  declare readonly installedHostKey: pulumi.Output<string | undefined>;
  /** The kernel the machine runs (its booted system's). */
  declare readonly kernel: pulumi.Output<string>;
  /** The declared system boots another kernel, initrd or kernel modules than the running one. */
  declare readonly needsReboot: pulumi.Output<boolean>;
  declare readonly layoutHash: pulumi.Output<string>;
  /** The layout's format hash: a change reinstalls the host. */
  declare readonly layoutFormatHash: pulumi.Output<string>;
  /** The layout's mount hash: a change alone is an update (the NixOS module carries it). */
  declare readonly layoutMountHash: pulumi.Output<string>;
  declare readonly stateVersion: pulumi.Output<number>;
  /** Keys refresh found missing (e.g. /run/keys after a reboot) or changed on the machine; the next up writes them again. */
  declare readonly keyDrift: pulumi.Output<Record<string, "missing" | "changed"> | undefined>;

  constructor(name: string, args: NixosHostArgs, opts?: pulumi.CustomResourceOptions) {
    const { diskLayout, ...rest } = args;
    const props = {
      ...rest,
      connection: markConnectionSecrets(args.connection),
      install: args.install === undefined ? undefined : markInstallSecrets(args.install),
      keys: args.keys === undefined ? undefined : markKeySecrets(args.keys),
      diskLayout: diskLayout ? { declared: diskLayout.declared } : undefined,
      // "__" keys are Pulumi-internal: never shown in a diff. Used for progress lines.
      __resourceName: name,
      // Named by the target's deploy lock when another deployer finds the machine busy.
      __stack: `${pulumi.getProject()}/${pulumi.getStack()}`,
      // Recorded on the machine as its manager, so another stack's update is refused.
      __urn: pulumi.createUrn(name, NIXOS_HOST_TYPE, opts?.parent),
      // A create's preview says what it does to the machine; the update after it does not repeat it.
      __preview: pulumi.runtime.isDryRun(),
      // Started now, while the program constructs the other hosts: the evaluations overlap,
      // and the engine's one-at-a-time `check` calls answer from them.
      // A secret in the system is not evaluated (it would land in the Nix store): `check`
      // refuses the fields named here.
      evaluation: pulumi.output(refusedSystemFields(args.system)).apply((secretFields) =>
        secretFields.length > 0 ? { secretFields } : pulumi.output(args.system).apply(evaluateInProgram)),
      toplevel: undefined,
      currentSystem: undefined,
      bootedSystem: undefined,
      generation: undefined,
      hostKey: undefined,
      installedHostKey: undefined,
      kernel: undefined,
      needsReboot: undefined,
      layoutHash: undefined,
      layoutFormatHash: undefined,
      layoutMountHash: undefined,
      stateVersion: undefined,
      keyDrift: undefined,
    };
    const dependsOn = diskLayout ? [diskLayout] : [];
    const restoreStackTraces = skipPromiseStackTraces();
    try {
      super(nixosHostProvider, name, props, { ...opts, dependsOn: mergeDependsOn(opts?.dependsOn, dependsOn) }, "nixos-pulumi", "NixosHost");
    } finally {
      restoreStackTraces();
    }
  }
}

function mergeDependsOn(
  given: pulumi.CustomResourceOptions["dependsOn"],
  extra: pulumi.Resource[],
): pulumi.CustomResourceOptions["dependsOn"] {
  if (extra.length === 0) return given;
  if (given === undefined) return extra;
  return pulumi.output(given).apply((g) => [...(Array.isArray(g) ? g : [g]), ...extra]);
}
