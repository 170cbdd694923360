// NixOS-shaped test systems (test/fixtures/system.nix), built by the local Nix.
import * as path from "node:path";
import { execa } from "execa";
import { renderDeclared } from "../../provider/disk";

export interface TestSystemOptions {
  label: string;
  variant?: "ok" | "fail" | "units-failed" | "cut-ssh" | "lose-ssh" | "init-changed" | "no-boot" | "pre-switch-fail";
  kernelVersion?: string;
  kernelFile?: string;
  initrdFile?: string;
  fillerCount?: number;
  fillerBytes?: number;
  /** QEMU guests: the runtime directory of the VM images (sshd, Nix). */
  vmRuntime?: string;
  /** The system's fileSystems as /etc/fstab lines; a system with a real initrd needs "/". */
  fstab?: string;
  /** boot.initrd.luks.devices: "name device keyFile allowDiscards" lines. */
  luksDevices?: string;
  /** boot.initrd.secrets: "dest source" lines. */
  initrdSecrets?: string;
  /** QEMU guests with luksDevices: the images' cryptsetup package, linked into sw/bin. */
  cryptsetup?: string;
}

export const SYSTEM_NIX = path.resolve(__dirname, "../../../test/fixtures/system.nix");

export function testSystemArgs(options: TestSystemOptions): string[] {
  const args = ["--argstr", "label", options.label];
  if (options.variant) args.push("--argstr", "variant", options.variant);
  if (options.kernelVersion) args.push("--argstr", "kernelVersion", options.kernelVersion);
  if (options.kernelFile) args.push("--arg", "kernelFile", options.kernelFile);
  if (options.initrdFile) args.push("--arg", "initrdFile", options.initrdFile);
  if (options.fillerCount) args.push("--arg", "fillerCount", String(options.fillerCount));
  if (options.fillerBytes) args.push("--arg", "fillerBytes", String(options.fillerBytes));
  if (options.vmRuntime) args.push("--arg", "vmRuntime", options.vmRuntime);
  if (options.fstab) args.push("--argstr", "fstab", options.fstab);
  if (options.luksDevices) args.push("--argstr", "luksDevices", options.luksDevices);
  if (options.initrdSecrets) args.push("--argstr", "initrdSecrets", options.initrdSecrets);
  if (options.cryptsetup) args.push("--arg", "cryptsetup", options.cryptsetup);
  return args;
}

const built = new Map<string, Promise<string>>();

/** Builds a test toplevel and returns its store path (cached per options in this process). */
export function buildTestSystem(options: TestSystemOptions): Promise<string> {
  const key = JSON.stringify(options);
  let result = built.get(key);
  if (!result) {
    result = execa("nix-build", ["--no-out-link", SYSTEM_NIX, ...testSystemArgs(options)]).then((r) => r.stdout.trim().split("\n").pop()!);
    built.set(key, result);
  }
  return result;
}

/**
 * What a layout's NixOS module gives a system (as a flake importing it would): its
 * fileSystems as fstab lines and its boot.initrd.luks.devices.
 */
export async function layoutSystemOptions(layout: Record<string, unknown>): Promise<Pick<TestSystemOptions, "fstab" | "luksDevices">> {
  const { nixos } = await renderDeclared(layout);
  const fstab = Object.entries(nixos.fileSystems)
    .map(([mountpoint, fs]) => `${fs.device} ${mountpoint} ${fs.fsType} ${fs.options.join(",") || "defaults"} 0 ${mountpoint === "/" ? 1 : 2}\n`)
    .join("");
  const luksDevices = Object.entries(nixos.luksDevices)
    .map(([name, luks]) => `${name} ${String(luks["device"])} ${String(luks["keyFile"] ?? "-")} ${luks["allowDiscards"] === true}\n`)
    .join("");
  return { fstab, luksDevices };
}
