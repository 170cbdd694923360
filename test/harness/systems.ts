// NixOS-shaped test systems (test/fixtures/system.nix), built by the local Nix.
import * as path from "node:path";
import { execa } from "execa";

export interface TestSystemOptions {
  label: string;
  variant?: "ok" | "fail" | "units-failed" | "cut-ssh" | "lose-ssh" | "init-changed" | "no-boot";
  kernelVersion?: string;
  kernelFile?: string;
  initrdFile?: string;
  fillerCount?: number;
  fillerBytes?: number;
  /** QEMU guests: the runtime directory of the VM images (sshd, Nix). */
  vmRuntime?: string;
  /** /etc/fstab lines for the system's fileSystems other than / (QEMU guests mount them). */
  fstab?: string;
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
