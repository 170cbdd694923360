// DiskLayout against disko's semantics (lib/types/*.nix of nix-community/disko, read at
// 878ec37d): our own layouts in the style of disko's example files, read from .nix files
// that use `lib`, and the options disko has that we refuse, each with its fix.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { normalizeLvs, normalizePartitions, renderDeclared, renderLayout, resolveLayout } from "../../provider/disk";
import { renderHostLayout } from "../../provider/host/layout";

const fixture = (name: string) => path.resolve(__dirname, "../../../test/fixtures/disko", name);
const byDevice = <T extends { device: string }>(xs: T[]) => [...xs].sort((a, b) => a.device.localeCompare(b.device));

test("luks + lvm from a .nix file using lib: settings, extra key file, LVs in disko's order, NixOS config", async () => {
  const spec = await resolveLayout({ diskoFile: fixture("luks-lvm-with-lib.nix") });
  assert.deepEqual(Object.keys(spec.lvm_vg!["pool"]!.lvs).sort(), ["home", "raw", "root"], "mkIf false drops the LV; mkIf true keeps it");
  // disko: priority 1000, +251 when the size holds "100%"; ties by attribute name.
  assert.deepEqual(normalizeLvs(spec.lvm_vg!["pool"]!).map((lv) => [lv.name, lv.priority]), [["home", 1000], ["raw", 1000], ["root", 1251]]);
  const r = renderLayout(spec);
  const dev = String.raw`"\$\(partition_device /dev/vdb 2\)"`;
  assert.match(r.script, new RegExp(String.raw`cryptsetup -q luksFormat ${dev} --key-file /tmp/secret.key\n`));
  assert.match(r.script, new RegExp(String.raw`cryptsetup open ${dev} crypted --allow-discards --key-file /tmp/secret.key --persistent\n`));
  assert.match(r.script, new RegExp(String.raw`cryptsetup luksAddKey ${dev} /tmp/additionalSecret.key --key-file /tmp/secret.key\n`));
  assert.match(r.script, /lvcreate -y -L 10M -n home pool >\/dev\/null\nlvcreate -y -L 10M -n raw pool >\/dev\/null\nlvcreate -y -l 100%FREE -n root pool/);
  assert.deepEqual(r.nixos.luksDevices, { crypted: { device: "/dev/disk/by-partlabel/disk-main-luks", keyFile: "/tmp/secret.key", allowDiscards: true } });
  assert.deepEqual(r.nixos.initrdKernelModules, ["dm-snapshot"]);
  assert.deepEqual(r.nixos.grubDevices, []);
  assert.deepEqual(r.fileSystems, {
    "/boot": { device: "/dev/disk/by-partlabel/disk-main-ESP", fsType: "vfat", options: ["umask=0077"] },
    "/": { device: "/dev/pool/root", fsType: "ext4", options: ["defaults"] },
    "/home": { device: "/dev/pool/home", fsType: "ext4", options: ["defaults"] },
  });
});

test("a 50%FREE LV next to fixed sizes is created in disko's order (by name), not after them", async () => {
  const spec = await resolveLayout({
    disk: { d: { device: "/dev/vda", content: { type: "gpt", partitions: { pv: { size: "100%", content: { type: "lvm_pv", vg: "vg" } } } } } },
    lvm_vg: { vg: { lvs: { a: { size: "50%FREE", content: { type: "filesystem", format: "ext4", mountpoint: "/" } }, b: { size: "1G" }, c: { size: "50%" } } } },
  });
  const r = renderLayout(spec);
  assert.match(r.script, /-l 50%FREE -n a vg[^\n]*\nlvcreate -y -L 1G -n b vg[^\n]*\nlvcreate -y -l 50%FREE -n c vg/);
});

test("btrfs node, start/end partitions and swap options from a .nix file", async () => {
  const spec = await resolveLayout({ diskoFile: fixture("btrfs-swap.nix") });
  const parts = normalizePartitions("main", spec.disk["main"]!.content);
  assert.deepEqual(
    parts.map((p) => [p.index, p.key, p.start, p.end, p.type]),
    [
      [1, "ESP", "1M", "128M", "EF00"],
      [2, "encryptedSwap", "0", "+10M", "8200"],
      [3, "root", "0", "-1G", "8300"],
      [4, "plainSwap", "0", "-0", "8200"],
    ],
  );
  const r = renderLayout(spec);
  assert.match(r.script, /--new=1:1M:128M /);
  assert.match(r.script, /--new=3:0:-1G /);
  assert.match(r.script, /mkswap "\$\(partition_device \/dev\/disk\/by-diskseq\/1 4\)"/);
  assert.doesNotMatch(r.script, /mkswap "\$\(partition_device \/dev\/disk\/by-diskseq\/1 2\)"/, "a randomly encrypted swap is set up by NixOS at boot, not formatted");
  assert.match(r.script, /btrfs subvolume create "\$btrfs_top"\/home\/user/);
  assert.match(r.script, /btrfs filesystem mkswapfile --size 20M "\$btrfs_top"\/swap\/swapfile/);
  assert.deepEqual(r.fileSystems["/"], { device: "/dev/disk/by-partlabel/disk-main-root", fsType: "btrfs", options: ["defaults", "subvol=/rootfs"] });
  assert.deepEqual(r.fileSystems["/home"], { device: "/dev/disk/by-partlabel/disk-main-root", fsType: "btrfs", options: ["compress=zstd", "subvol=/home"] });
  assert.equal(r.fileSystems["/home/user"], undefined, "a subvolume without a mountpoint is created, not mounted");
  assert.deepEqual(byDevice(r.swapDevices), [
    { device: "/.swapvol/swapfile", priority: null, options: ["defaults"] },
    { device: "/dev/disk/by-partlabel/disk-main-encryptedSwap", discardPolicy: null, priority: 100, randomEncryption: { enable: true, allowDiscards: false }, options: ["defaults"] },
    { device: "/dev/disk/by-partlabel/disk-main-plainSwap", discardPolicy: "both", priority: null, randomEncryption: { enable: false, allowDiscards: true }, options: ["defaults"] },
  ]);
  assert.equal(r.nixos.resumeDevice, "/dev/disk/by-partlabel/disk-main-plainSwap");
});

test("a default label longer than GPT allows is hashed like disko (sha256, 36 hex digits); names are udev-escaped", async () => {
  const long = "this-is-some-super-long-name-to-test-what-happens-when-the-name-is-too-long";
  const spec = await resolveLayout({
    disk: {
      main: {
        device: "/dev/sda",
        name: long,
        content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } }, data: { size: "1G", label: "Boot data" } } },
      },
    },
  });
  const { stdout } = await execa("nix-instantiate", ["--eval", "--json", "-E", `builtins.substring 0 36 (builtins.hashString "sha256" "disk-${long}-root")`]);
  const parts = normalizePartitions(long, spec.disk["main"]!.content);
  assert.equal(parts.find((p) => p.key === "root")!.label, JSON.parse(stdout));
  assert.equal(renderLayout(spec).fileSystems["/"]!.device, `/dev/disk/by-partlabel/${JSON.parse(stdout)}`);
  assert.match(renderLayout(spec).script, /--change-name='1:Boot data'/);
});

test("a partition uuid names the device by-partuuid and is written with sgdisk; attributes are set", async () => {
  const r = renderLayout(
    await resolveLayout({
      disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { boot: { size: "1M", type: "EF02", attributes: [0, 2] }, root: { size: "100%", uuid: "809b3a2b-828a-4730-95e1-75b6343e415a", content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } } },
    }),
  );
  assert.match(r.script, /--partition-guid=2:809b3a2b-828a-4730-95e1-75b6343e415a/);
  assert.match(r.script, /--attributes=1:=:0 --attributes=1:set:0 --attributes=1:set:2 /);
  assert.equal(r.fileSystems["/"]!.device, "/dev/disk/by-partuuid/809b3a2b-828a-4730-95e1-75b6343e415a");
});

test("passwordFile feeds the passphrase without its trailing newline, like disko", async () => {
  const r = renderLayout(
    await resolveLayout({
      disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { c: { size: "100%", content: { type: "luks", name: "c", passwordFile: "/tmp/pw", extraFormatArgs: ["--pbkdf argon2id"], content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } } } },
    }),
  );
  assert.match(r.script, /printf '%s' "\$\(cat \/tmp\/pw\)" \| cryptsetup -q luksFormat "\$\(partition_device \/dev\/vda 1\)" --pbkdf argon2id --key-file -/);
});

// Every key of the diskoNix output must be an option of that node type in disko's
// lib/types/*.nix (read at 878ec37d); disko's submodules refuse any other key.
const DISKO_OPTIONS: Record<string, string[]> = {
  disk: ["name", "type", "device", "destroy", "imageName", "imageSize", "content"],
  gpt: ["type", "device", "partitions", "efiGptPartitionFirst"],
  partition: ["type", "attributes", "device", "priority", "name", "uuid", "label", "size", "alignment", "start", "end", "content", "hybrid"],
  filesystem: ["type", "device", "extraArgs", "mountOptions", "mountpoint", "format"],
  btrfs: ["type", "device", "extraArgs", "mountOptions", "subvolumes", "mountpoint", "swap"],
  btrfs_subvol: ["name", "type", "extraArgs", "mountOptions", "mountpoint", "swap"],
  swapfile: ["size", "path", "priority", "options"],
  swap: ["type", "device", "discardPolicy", "extraArgs", "mountOptions", "priority", "randomEncryption", "resumeDevice"],
  luks: ["type", "device", "name", "keyFile", "passwordFile", "askPassword", "settings", "additionalKeyFiles", "initrdUnlock", "extraFormatArgs", "extraOpenArgs", "content"],
  lvm_pv: ["type", "device", "vg"],
  lvm_vg: ["name", "type", "lvs"],
  lv: ["name", "priority", "size", "lvm_type", "extraArgs", "pool", "content"],
  nodev: ["type", "fsType", "device", "mountpoint", "mountOptions"],
};

function checkKeys(kind: string, node: Record<string, unknown>, at: string, bad: string[]): void {
  for (const key of Object.keys(node)) if (!DISKO_OPTIONS[kind]!.includes(key)) bad.push(`${at}.${key} (${kind})`);
  const content = node["content"] as Record<string, unknown> | null | undefined;
  if (content && kind !== "disk") checkKeys(String(content["type"]), content, `${at}.content`, bad);
  if (kind === "disk") checkKeys("gpt", content!, `${at}.content`, bad);
  if (kind === "gpt") for (const [k, p] of Object.entries(node["partitions"] as object)) checkKeys("partition", p, `${at}.partitions.${k}`, bad);
  if (kind === "btrfs" || kind === "btrfs_subvol") for (const [k, f] of Object.entries((node["swap"] ?? {}) as object)) checkKeys("swapfile", f, `${at}.swap.${k}`, bad);
  if (kind === "btrfs") for (const [k, s] of Object.entries(node["subvolumes"] as object)) checkKeys("btrfs_subvol", s, `${at}.subvolumes.${k}`, bad);
  if (kind === "lvm_vg") for (const [k, lv] of Object.entries(node["lvs"] as object)) checkKeys("lv", lv, `${at}.lvs.${k}`, bad);
}

test("diskoNix holds only options of disko's node types, and reads back into the same layout", async () => {
  for (const file of ["luks-lvm-with-lib.nix", "btrfs-swap.nix", "tmpfs-root.nix"]) {
    const r = renderLayout(await resolveLayout({ diskoFile: fixture(file) }));
    const dir = mkdtempSync(path.join(os.tmpdir(), "disko-nix-"));
    writeFileSync(path.join(dir, "disk.nix"), r.diskoNix);
    const { stdout } = await execa("nix-instantiate", ["--eval", "--strict", "--json", "-E", `(import ${dir}/disk.nix { }).disko.devices`]);
    const devices = JSON.parse(stdout) as { disk: Record<string, Record<string, unknown>>; lvm_vg?: Record<string, Record<string, unknown>>; nodev?: Record<string, Record<string, unknown>> };
    const bad: string[] = [];
    for (const [k, d] of Object.entries(devices.disk)) checkKeys("disk", d, `disk.${k}`, bad);
    for (const [k, vg] of Object.entries(devices.lvm_vg ?? {})) checkKeys("lvm_vg", vg, `lvm_vg.${k}`, bad);
    for (const [k, n] of Object.entries(devices.nodev ?? {})) checkKeys("nodev", n, `nodev.${k}`, bad);
    assert.deepEqual(bad, [], `${file}: keys disko does not know`);
    assert.equal(renderLayout(await resolveLayout({ diskoFile: path.join(dir, "disk.nix") })).hash, r.hash, file);
  }
});

const part = (content: unknown, extra: Record<string, unknown> = {}) => ({
  disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } }, x: { size: "1G", content, ...extra } } } } },
});
type Refused = [name: string, layout: unknown, field: RegExp, fix: RegExp];
const refused: Refused[] = [
  ["askPassword (a prompt)", part({ type: "luks", name: "c", askPassword: true }), /partitions\.x\.content\.askPassword/, /settings\.keyFile .* or passwordFile/],
  ["luks without any key", part({ type: "luks", name: "c" }), /settings\.keyFile/, /passwordFile/],
  ["a filesystem with subvolumes", part({ type: "filesystem", format: "btrfs", subvolumes: { "@": {} } }), /content\.subvolumes/, /type: "btrfs"/],
  ["zfs content", part({ type: "zfs", pool: "zroot" }), /partitions\.x\.content/, /zfs pools are not supported.*content\.type is one of/],
  ["mdraid content", part({ type: "mdraid", name: "md0" }), /partitions\.x\.content/, /mdadm RAID is not supported/],
  ["a hybrid MBR entry", part(undefined, { hybrid: { mbrPartitionType: "0x0c" } }), /partitions\.x\.hybrid/, /not supported/],
  ["a label longer than 36 characters", part(undefined, { label: "x".repeat(37) }), /partitions\.x\.label/, /at most 36 characters/],
  ["a partition without size or end", part(undefined, { size: undefined }), /partitions\.x\.size/, /or an end/],
  ["an unknown partition option", part(undefined, { sizee: "1G" }), /partitions\.x/, /sizee/],
  ["destroy = false", { disk: { main: { device: "/dev/vda", destroy: false, content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } } } }, /disk\.main\.destroy/, /leave the disk out/],
  ["imageSize", { disk: { main: { device: "/dev/vda", imageSize: "8G", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } } } }, /disk\.main\.imageSize/, /VM images/],
  ["nodev without fsType", { ...part(undefined), nodev: { "/tmp": {} } }, /nodev\.\/tmp\.fsType/, /"tmpfs"/],
  ["a RAID LV", { ...part({ type: "lvm_pv", vg: "vg" }), lvm_vg: { vg: { type: "lvm_vg", lvs: { r: { size: "1G", lvm_type: "raid1" } } } } }, /lvm_vg\.vg\.lvs\.r\.lvm_type/, /not supported/],
  ["a swap file without a mountpoint", part({ type: "btrfs", swap: { s: { size: "1G" } } }), /content\.swap/, /need the btrfs node to have a mountpoint/],
  ["an extraOpenArgs word with shell characters", part({ type: "luks", name: "c", settings: { keyFile: "/k" }, extraOpenArgs: ["--timeout $(reboot)"] }), /extraOpenArgs/, /without quotes or shell characters/],
];
for (const [name, layout, field, fix] of refused) {
  test(`refused with the field and the fix: ${name}`, async () => {
    await assert.rejects(resolveLayout(layout as Record<string, unknown>), (err: Error) => {
      assert.match(err.message, field);
      assert.match(err.message, fix);
      return true;
    });
  });
}

test("a layout function without '...' gets only the arguments it names; mkMerge and mkForce resolve", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "disko-fn-"));
  writeFileSync(
    path.join(dir, "disk.nix"),
    `{ lib, disks ? [ "/dev/vdb" ] }: { disko.devices = lib.mkMerge [
      { disk.main = { device = lib.mkForce (lib.head disks); content = { type = "gpt"; partitions.root = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; }; }; }; }
      { disk.main.content.partitions.ESP = lib.optionalAttrs true { size = "512M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; }; }
    ]; }`,
  );
  const spec = await resolveLayout({ diskoFile: path.join(dir, "disk.nix") });
  assert.equal(spec.disk["main"]!.device, "/dev/vdb");
  assert.deepEqual(Object.keys(spec.disk["main"]!.content.partitions).sort(), ["ESP", "root"]);
});

test("nodev: tmpfs on / (disko's hybrid-tmpfs-on-root style), mounted first, in fileSystems", async () => {
  const r = renderLayout(await resolveLayout({ diskoFile: fixture("tmpfs-root.nix") }));
  // disko: a special fsType (tmpfs, proc, …) is its own device (nodev.nix: mkDefault config.fsType).
  assert.deepEqual(r.fileSystems["/"], { device: "tmpfs", fsType: "tmpfs", options: ["size=2G", "defaults", "mode=755"] });
  assert.deepEqual(r.fileSystems["/nix"], { device: "/dev/disk/by-partlabel/disk-main-nix", fsType: "ext4", options: ["defaults"] });
  assert.ok(r.script.indexOf("mount_nodev tmpfs tmpfs /mnt") < r.script.indexOf("mount_once ext4"), "/ before /nix");
});

test("nodev device: the fsType for nixpkgs' special filesystems, else \"none\"; a given device is kept", async () => {
  const r = renderLayout(
    await resolveLayout({
      ...part(undefined),
      nodev: { "/tmp": { fsType: "tmpfs" }, "/r": { fsType: "ramfs" }, "/o": { fsType: "overlay", mountOptions: ["lowerdir=/a"] }, "/t2": { fsType: "tmpfs", device: "scratch" } },
    }),
  );
  assert.deepEqual(
    Object.fromEntries(["/tmp", "/r", "/o", "/t2"].map((mp) => [mp, r.fileSystems[mp]!.device])),
    { "/tmp": "tmpfs", "/r": "ramfs", "/o": "none", "/t2": "scratch" },
  );
});

test("btrfs subvolumes are created in disko's order, Nix's attribute-name order, whatever the object's key order", async () => {
  const names = ["/home/user", "/home", "@nix", "@", "Z", "a", "/home-old"];
  const subvolumes = Object.fromEntries(names.map((n) => [n, {}]));
  const r = renderLayout(
    await resolveLayout({
      disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "btrfs", mountpoint: "/", subvolumes } } } } } },
    }),
  );
  const created = [...r.script.matchAll(/btrfs subvolume create "\$btrfs_top"\/(\S+)/g)].map((m) => m[1]);
  // disko walks lib.attrValues config.subvolumes: the order of builtins.attrNames.
  const { stdout } = await execa("nix-instantiate", ["--eval", "--strict", "--json", "-E", `builtins.attrNames { ${names.map((n) => `${JSON.stringify(n)} = 1;`).join(" ")} }`]);
  assert.deepEqual(created, (JSON.parse(stdout) as string[]).map((n) => n.replace(/^\/+/, "")));
  assert.ok(created.indexOf("home") < created.indexOf("home/user"), "the parent subvolume first, or its create fails on the directory mkdir -p made");
});

const oneIssue = async (declared: Record<string, unknown>, field: RegExp, message: RegExp) => {
  await assert.rejects(renderDeclared(declared), (err: Error) => {
    const lines = err.message.split("\n").filter((l) => l.startsWith("  - "));
    assert.equal(lines.length, 1, err.message);
    assert.match(lines[0]!, field);
    assert.match(lines[0]!, message);
    return true;
  });
};

test("a DiskLayout with both or neither of its alternative inputs gets the one message naming them", async () => {
  const disk = part(undefined).disk;
  await oneIssue({ diskoFile: fixture("btrfs-swap.nix"), disk }, /- diskoFile:/, /give either diskoFile or the devices \(disk, lvm_vg, nodev\), not both; disk given too/);
  await oneIssue({ diskoScript: { storePath: "/nix/store/00000000000000000000000000000000-disko" }, diskoFile: fixture("btrfs-swap.nix") }, /- diskoScript:/, /give either diskoScript or .*not both; diskoFile given too/);
  await oneIssue({}, /- \(root\):/, /the devices \(disk, with lvm_vg and nodev as needed\), diskoFile .* or diskoScript/);
  await oneIssue({ diskoFile: 42 }, /- diskoFile:/, /path of a disko \.nix file/);
});

test("a legacy msdos table gets one message, not one per field it has", async () => {
  await oneIssue(
    { disk: { main: { device: "/dev/vda", content: { type: "table", format: "msdos", partitions: [{ name: "root", start: "1M", end: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } }] } } } },
    /disk\.main\.content\.type/,
    /the disk content type is "gpt" \(legacy msdos tables/,
  );
  // A gpt table's own typo is still named with its fix.
  await oneIssue({ disk: { main: { device: "/dev/vda", content: { type: "gpt", partitons: {} } } } }, /content\.partitons/, /did you mean "partitions"/);
});

test("a layout of data disks only (no \"/\") is a DiskLayout, as in disko; an install onto it is refused, naming diskLayout", async () => {
  const data = { disk: { data: { device: "/dev/vdb", content: { type: "gpt", partitions: { data: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/srv/data" } } } } } } };
  const r = await renderDeclared(data);
  assert.deepEqual(r.fileSystems, { "/srv/data": { device: "/dev/disk/by-partlabel/disk-data-data", fsType: "ext4", options: ["defaults"] } });
  assert.match(r.nixosModule, /"\/srv\/data"/);
  assert.match(r.script, /mount_once ext4 .* \/mnt\/srv\/data/);
  await assert.rejects(renderHostLayout({ declared: data }), (err: Error) => {
    assert.match(err.message, /invalid NixosHost inputs:\n  - diskLayout: the layout mounts nothing at "\/", and an install puts the system on the layout's "\/"/);
    assert.match(err.message, /nodev\."\/"/);
    return true;
  });
});

test("an lvm_vg with a name: lvm_pv.vg and the LV devices use that name, as disko", async () => {
  const r = renderLayout(
    await resolveLayout({
      disk: { d: { device: "/dev/vda", content: { type: "gpt", partitions: { pv: { size: "100%", content: { type: "lvm_pv", vg: "vg0" } } } } } },
      lvm_vg: { pool: { name: "vg0", lvs: { root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } },
    }),
  );
  assert.match(r.script, /vgcreate -y vg0 "\$\(partition_device \/dev\/vda 1\)"/);
  assert.equal(r.fileSystems["/"]!.device, "/dev/vg0/root");
});
