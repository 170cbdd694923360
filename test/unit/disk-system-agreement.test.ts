// The preview-time check that a system evaluable as a NixOS configuration mounts what its
// DiskLayout creates, showing both sides when it does not.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { execa } from "execa";
import { diskLayoutNixosModule } from "../../provider";
import { renderLayout, resolveLayout } from "../../provider/disk";
import { checkSystemAgreesWithLayout, systemFileSystems } from "../../provider/host/layout-agreement";
import { tutorialLayout } from "../fixtures/layouts";

const file = path.resolve(__dirname, "../../../test/fixtures/disko/nixos-config.nix");
const system = (args: Record<string, string> = {}) => ({ expression: { file, attr: "system", args } });
const layoutFileSystems = async () => renderLayout(await resolveLayout(tutorialLayout())).fileSystems;

test("a system whose fileSystems match the layout passes", async () => {
  assert.deepEqual(Object.keys((await systemFileSystems(system()))!).sort(), ["/", "/boot"], "the system was evaluated");
  await checkSystemAgreesWithLayout(system(), await layoutFileSystems());
});

test("a system mounting / from another device fails, showing both sides", async () => {
  await assert.rejects(checkSystemAgreesWithLayout(system({ root: "/dev/sda2" }), await layoutFileSystems()), (err: Error) => {
    assert.match(err.message, /fileSystems do not agree with its diskLayout/);
    assert.match(err.message, /\/:\n\s+layout \{ device = "\/dev\/disk\/by-partlabel\/disk-main-root"; fsType = "ext4"; options = \[ "defaults" \]; \}\n\s+system \{ device = "\/dev\/sda2"; fsType = "ext4"/);
    assert.match(err.message, /nixosModule/);
    return true;
  });
});

test("mount options that differ are shown too", async () => {
  await assert.rejects(checkSystemAgreesWithLayout(system({ rootOptions: "noatime" }), await layoutFileSystems()), /options = \[ "noatime" \]/);
});

test("a system that is not a NixOS configuration (a bare toplevel) is not checked", async () => {
  const bare = { expression: { file: path.resolve(__dirname, "../../../test/fixtures/system.nix"), args: { label: "x" } } };
  assert.equal(await systemFileSystems(bare), undefined);
  await checkSystemAgreesWithLayout(bare, await layoutFileSystems());
});

test("a NixOS configuration whose fileSystems fail to evaluate is an error, not \"not NixOS\"", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "broken-fs-"));
  writeFileSync(path.join(dir, "system.nix"), `{ config.fileSystems."/" = { device = throw "no root device chosen"; fsType = "ext4"; }; system = null; }`);
  await assert.rejects(checkSystemAgreesWithLayout({ expression: { file: path.join(dir, "system.nix"), attr: "system" } }, await layoutFileSystems()), (err: Error) => {
    assert.match(err.message, /could not evaluate the fileSystems of .*system\.nix \(attr system\) to check them against the diskLayout/);
    assert.match(err.message, /no root device chosen/, "nix's own error is shown");
    assert.match(err.message, /fix: fix the evaluation error/);
    return true;
  });
});

test("the layout's NixOS module, written at program time, declares what the agreement check wants", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "disk-module-"));
  writeFileSync(path.join(dir, "disk.nix"), await diskLayoutNixosModule(tutorialLayout()));
  writeFileSync(path.join(dir, "system.nix"), `{ config = (import ./disk.nix { }); system = null; }`);
  const { stdout } = await execa("nix-instantiate", ["--eval", "--strict", "--json", "-E", `(import ${dir}/disk.nix { }).boot.loader.grub.devices`]);
  assert.deepEqual(JSON.parse(stdout), ["/dev/vda"]);
  await checkSystemAgreesWithLayout({ expression: { file: path.join(dir, "system.nix"), attr: "system" } }, await layoutFileSystems());
});
