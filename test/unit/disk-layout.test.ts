import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { normalizePartitions, renderLayout, resolveLayout } from "../../provider/disk";
import { tutorialLayout } from "../fixtures/layouts";

const FIXTURE = path.resolve(__dirname, "../../../test/fixtures/single-disk-layout.nix");

test("the tutorial's layout yields disko's partitions: order, sizes, type codes, labels", async () => {
  const spec = await resolveLayout(tutorialLayout());
  const parts = normalizePartitions("main", spec.disk["main"]!.content);
  assert.deepEqual(
    parts.map((p) => [p.index, p.name, p.size, p.type, p.label]),
    [
      [1, "MBR", "1M", "EF02", "disk-main-MBR"],
      [2, "ESP", "500M", "EF00", "disk-main-ESP"],
      [3, "root", "100%", "8300", "disk-main-root"],
    ],
  );
  const r = renderLayout(spec);
  assert.deepEqual(r.fileSystems, {
    "/boot": { device: "/dev/disk/by-partlabel/disk-main-ESP", fsType: "vfat", options: ["defaults"] },
    "/": { device: "/dev/disk/by-partlabel/disk-main-root", fsType: "ext4", options: ["defaults"] },
  });
  assert.deepEqual(r.swapDevices, []);
  // disko's sgdisk arguments (lib/types/gpt.nix _create).
  assert.match(r.script, /sgdisk --align-end --new=1:0:\+1M --partition-guid=1:R --change-name=1:disk-main-MBR --typecode=1:EF02 --attributes=1:=:0 \/dev\/vda/);
  assert.match(r.script, /--new=3:0:-0 --partition-guid=3:R --change-name=3:disk-main-root --typecode=3:8300/);
  // "/" is mounted before "/boot".
  assert.ok(r.script.indexOf("mount_once vfat") > r.script.indexOf("mount_once ext4"));
  assert.deepEqual(r.nixos.grubDevices, ["/dev/vda"], "an EF02 partition puts the disk in boot.loader.grub.devices");
});

test("reading the tutorial's single-disk-layout.nix gives the same layout and hash", async () => {
  const fromFile = renderLayout(await resolveLayout({ diskoFile: FIXTURE }));
  const inline = renderLayout(await resolveLayout(tutorialLayout()));
  assert.deepEqual(fromFile.spec, inline.spec);
  assert.equal(fromFile.hash, inline.hash);
});

test("the disko Nix output evaluates with the local Nix to the same structure", async () => {
  const r = renderLayout(await resolveLayout(tutorialLayout()));
  const dir = mkdtempSync(path.join(os.tmpdir(), "disko-nix-"));
  writeFileSync(path.join(dir, "disk.nix"), r.diskoNix);
  const { stdout } = await execa("nix-instantiate", ["--eval", "--strict", "--json", "-E", `(import ${dir}/disk.nix { }).disko.devices`]);
  assert.deepEqual(JSON.parse(stdout), JSON.parse(JSON.stringify(r.spec)));
  // ...and reads back into the same layout.
  assert.equal(renderLayout(await resolveLayout({ diskoFile: path.join(dir, "disk.nix") })).hash, r.hash);
});

test("disko's default priorities: BIOS boot first, the 100% partition last, ties by name", async () => {
  const spec = await resolveLayout({
    disk: {
      d: {
        device: "/dev/sda",
        content: {
          type: "gpt",
          partitions: {
            zroot: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } },
            esp: { size: "512M", type: "ef00", content: { type: "filesystem", format: "vfat", mountpoint: "/boot" } },
            boot: { size: "1M", type: "EF02" },
            aswap: { size: "1G", content: { type: "swap" } },
          },
        },
      },
    },
  });
  const parts = normalizePartitions("d", spec.disk["d"]!.content);
  assert.deepEqual(parts.map((p) => [p.name, p.priority]), [["boot", 100], ["aswap", 1000], ["esp", 1000], ["zroot", 9001]]);
  assert.deepEqual(renderLayout(spec).swapDevices, [
    { device: "/dev/disk/by-partlabel/disk-d-aswap", discardPolicy: null, priority: null, randomEncryption: { enable: false, allowDiscards: false }, options: ["defaults"] },
  ]);
  assert.equal(parts.find((p) => p.name === "aswap")!.type, "8200", "a swap partition without a type is 8200, as in disko");
});

test("LUKS and LVM render their commands and the devices NixOS mounts", async () => {
  const r = renderLayout(
    await resolveLayout({
      disk: {
        main: {
          device: "/dev/nvme0n1",
          content: {
            type: "gpt",
            partitions: {
              ESP: { size: "512M", type: "EF00", content: { type: "filesystem", format: "vfat", mountpoint: "/boot" } },
              crypt: { size: "100%", content: { type: "luks", name: "cryptroot", keyFile: "/tmp/disk.key", content: { type: "lvm_pv", vg: "pool" } } },
            },
          },
        },
      },
      lvm_vg: { pool: { lvs: { root: { size: "100%FREE", content: { type: "filesystem", format: "ext4", mountpoint: "/" } }, swap: { size: "2G", content: { type: "swap" } } } } },
    }),
  );
  assert.match(r.script, /cryptsetup -q luksFormat "\$\(partition_device \/dev\/nvme0n1 2\)" --key-file \/tmp\/disk.key/);
  assert.match(r.script, /pvcreate -ff -y \/dev\/mapper\/cryptroot/);
  assert.match(r.script, /vgcreate -y pool \/dev\/mapper\/cryptroot/);
  assert.ok(r.script.indexOf("lvcreate -y -L 2G -n swap") < r.script.indexOf("lvcreate -y -l 100%FREE -n root"), "100% sizes last (priority 1251)");
  assert.deepEqual(r.fileSystems["/"], { device: "/dev/pool/root", fsType: "ext4", options: ["defaults"] });
  assert.match(r.mountScript, /luks_is_open cryptroot .* \|\| cryptsetup open .* cryptroot --key-file \/tmp\/disk.key/);
  assert.match(r.mountScript, /vg_activate pool \/dev\/mapper\/cryptroot\n/, "the VG is activated only from the layout's PV");
  assert.deepEqual(r.nixos.luksDevices, { cryptroot: { device: "/dev/disk/by-partlabel/disk-main-crypt" } });
  assert.deepEqual(r.nixos.initrdKernelModules, ["dm-snapshot"]);
  assert.doesNotMatch(r.mountScript, /sgdisk|mkfs|luksFormat/, "the mount script wipes nothing");
});

test("btrfs subvolumes mount with subvol= options", async () => {
  const r = renderLayout(
    await resolveLayout({
      disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "btrfs", subvolumes: { "@": { mountpoint: "/" }, "@nix": { mountpoint: "/nix", mountOptions: ["noatime"] } } } } } } } },
    }),
  );
  assert.deepEqual(r.fileSystems["/nix"], { device: "/dev/disk/by-partlabel/disk-main-root", fsType: "btrfs", options: ["noatime", "subvol=@nix"] });
  assert.match(r.script, /btrfs subvolume create "\$btrfs_top"\/@nix/);
});

type BadCase = [name: string, layout: unknown, field: RegExp, fix: RegExp];
const withPartitions = (partitions: unknown) => ({ disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions } } } });
const root = { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } };
const bad: BadCase[] = [
  ["two 100% partitions on one disk", withPartitions({ a: root, b: { size: "100%" } }), /partitions\.b\.size/, /only one partition per disk/],
  ["a mountpoint used twice", withPartitions({ root, other: { size: "1G", content: { type: "filesystem", format: "ext4", mountpoint: "/" } } }), /mountpoint/, /already used/],
  ["unknown content type", withPartitions({ root, z: { size: "1G", content: { type: "zfs" } } }), /partitions\.z\.content/, /content\.type is one of/],
  ["bad size", withPartitions({ root, esp: { size: "1.5G", content: { type: "filesystem", format: "vfat", mountpoint: "/boot" } } }), /partitions\.esp\.size/, /"512M"/],
  ["a partition too small for its filesystem", withPartitions({ root: { size: "100M", content: { type: "filesystem", format: "xfs", mountpoint: "/" } } }), /partitions\.root\.size/, /xfs needs at least 300 MiB/],
  ["a filesystem format that is not a program name", withPartitions({ root: { size: "100%", content: { type: "filesystem", format: "ext4 -O x", mountpoint: "/" } } }), /format/, /mkfs\.<format> program, e.g. "ext4"/],
  ["bad type code", withPartitions({ root, x: { size: "1M", type: "EF0" } }), /partitions\.x\.type/, /sgdisk type code/],
  ["a partition without a size", withPartitions({ root, x: { type: "EF02" } }), /partitions\.x\.size/, /give the partition a size/],
  ["lvm_pv naming a missing volume group", withPartitions({ root, pv: { size: "1G", content: { type: "lvm_pv", vg: "nope" } } }), /vg/, /no lvm_vg "nope"/],
  ["luks without a key file", withPartitions({ root, c: { size: "1G", content: { type: "luks", name: "c" } } }), /keyFile/, /key file/],
  ["a relative disk device", { disk: { main: { device: "vda", content: { type: "gpt", partitions: { root } } } } }, /disk\.main\.device/, /\/dev\/vda/],
  ["no disks", { disk: {} }, /disk/, /at least one disk/],
];
for (const [name, layout, field, fix] of bad) {
  test(`bad layout: ${name}`, async () => {
    await assert.rejects(resolveLayout(layout as Record<string, unknown>), (err: Error) => {
      assert.match(err.message, field);
      assert.match(err.message, fix);
      return true;
    });
  });
}

test("the create script checks for every tool it calls before it releases or wipes anything: its nodes' and the preamble's", async () => {
  const r = renderLayout(await resolveLayout({ diskoFile: path.resolve(__dirname, "../../../test/fixtures/disko/luks-lvm-with-lib.nix") }));
  const line = r.script.split("\n").find((l) => l.startsWith("require_tools "))!;
  const nodes = ["cryptsetup", "lvcreate", "mkfs.ext4", "mkfs.vfat", "pvcreate", "sgdisk", "vgchange", "vgcreate"];
  const preamble = ["awk", "basename", "cat", "cut", "findmnt", "grep", "mkdir", "mknod", "mount", "readlink", "rm", "sed", "sort", "stat", "swapoff", "tail", "tr", "umount"];
  assert.deepEqual(line.split(" ").slice(1), [...nodes, ...preamble].sort());
  assert.deepEqual(r.tools, [...nodes, ...preamble].sort(), "the install brings the same list");
  // The LUKS and LVM tools the release calls for what the machine has are required here (the layout's nodes).
  assert.deepEqual(r.optionalTools, ["blockdev", "modprobe", "partprobe", "partx", "pvs", "udevadm"]);
  assert.ok(r.script.indexOf(line) < r.script.indexOf("\nrelease_disks "), "before the release");
});

test("a layout without LUKS or LVM does not require their tools; each node adds only what it calls", async () => {
  const plain = renderLayout(await resolveLayout({ disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "filesystem", format: "xfs", mountpoint: "/" } } } } } } }));
  assert.ok(!plain.tools.some((t) => ["cryptsetup", "vgchange", "pvcreate", "mkswap", "btrfs"].includes(t)), plain.tools.join(" "));
  assert.ok(plain.tools.includes("mkfs.xfs") && plain.tools.includes("sgdisk"));
  assert.deepEqual(plain.optionalTools, ["blockdev", "cryptsetup", "modprobe", "partprobe", "partx", "pvs", "udevadm", "vgchange"], "released when the machine has them");
});
