// The demo's system: a NixOS-shaped test system (test/fixtures/system.nix) for the VM
// images, `demo-<label>`, its fileSystems as the layout's NixOS module declares them.
import * as path from "node:path";
import { buildTestSystem } from "../../test/harness/systems";

const FSTAB = "/dev/disk/by-partlabel/disk-main-root / ext4 defaults 0 1\n/dev/disk/by-partlabel/disk-main-ESP /boot vfat defaults 0 2\n";

/** Builds the system into the local store; returns its toplevel store path. */
export function buildDemoSystem(images: string, label: string): Promise<string> {
  return buildTestSystem({
    label: `demo-${label}`,
    kernelFile: path.join(images, "bzImage"),
    initrdFile: path.join(images, "stage1.cpio.gz"),
    vmRuntime: path.join(images, "runtime"),
    fstab: FSTAB,
  });
}
