// The layout's two hashes: what needs formatting (replace: a reinstall) and how it mounts
// (update: the system's NixOS module carries it).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { renderLayout, resolveLayout } from "../../provider/disk";
import { diffHost, explainHostDiff } from "../../provider/host/diff";

const layout = (over: { rootOptions?: string[]; rootFormat?: string; espSize?: string; homeMount?: string | null; allowDiscards?: boolean; swapPriority?: number; lvSize?: string } = {}) => ({
  disk: {
    main: {
      device: "/dev/vda",
      content: {
        type: "gpt",
        partitions: {
          ESP: { size: over.espSize ?? "500M", type: "EF00", content: { type: "filesystem", format: "vfat", mountpoint: "/boot" } },
          swap: { size: "1G", content: { type: "swap", ...(over.swapPriority !== undefined ? { priority: over.swapPriority } : {}) } },
          crypt: {
            size: "100%",
            content: { type: "luks", name: "crypted", settings: { keyFile: "/tmp/k", ...(over.allowDiscards ? { allowDiscards: true } : {}) }, content: { type: "lvm_pv", vg: "pool" } },
          },
        },
      },
    },
  },
  lvm_vg: {
    pool: {
      lvs: {
        root: { size: over.lvSize ?? "10G", content: { type: "filesystem", format: over.rootFormat ?? "ext4", mountpoint: "/", mountOptions: over.rootOptions ?? ["defaults"] } },
        home: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: over.homeMount === undefined ? "/home" : over.homeMount } },
      },
    },
  },
});

const hashes = async (l: unknown) => {
  const r = renderLayout(await resolveLayout(l as Record<string, unknown>));
  return { formatHash: r.formatHash, mountHash: r.mountHash };
};

test("mount-only changes keep the format hash and change the mount hash", async () => {
  const base = await hashes(layout());
  for (const [what, changed] of [
    ["a mount option (noatime)", layout({ rootOptions: ["noatime"] })],
    ["a new mountpoint for an existing filesystem", layout({ homeMount: "/srv" })],
    ["allowDiscards on the LUKS volume", layout({ allowDiscards: true })],
    ["a swap priority", layout({ swapPriority: 10 })],
  ] as const) {
    const h = await hashes(changed);
    assert.equal(h.formatHash, base.formatHash, `${what}: no formatting needed`);
    assert.notEqual(h.mountHash, base.mountHash, `${what}: the NixOS side changes`);
  }
});

test("changes that need formatting change the format hash", async () => {
  const base = await hashes(layout());
  for (const [what, changed] of [
    ["a filesystem format", layout({ rootFormat: "xfs" })],
    ["a partition size", layout({ espSize: "1G" })],
    ["an LV size", layout({ lvSize: "20G" })],
  ] as const) {
    assert.notEqual((await hashes(changed)).formatHash, base.formatHash, what);
  }
});

test("NixosHost: a format change replaces the host, a mount-only change is an update", async () => {
  const base = await hashes(layout());
  const olds = { connection: { host: "10.0.0.1" }, system: { storePath: "/nix/store/a" }, toplevel: "/nix/store/a", layoutFormatHash: base.formatHash, layoutMountHash: base.mountHash };
  const mountOnly = await hashes(layout({ rootOptions: ["noatime"] }));
  const d1 = diffHost(olds, { ...olds, layoutFormatHash: mountOnly.formatHash, layoutMountHash: mountOnly.mountHash });
  assert.deepEqual(d1, { changes: true, replaces: [], deleteBeforeReplace: false });
  const reformat = await hashes(layout({ rootFormat: "xfs" }));
  const d2 = diffHost(olds, { ...olds, layoutFormatHash: reformat.formatHash, layoutMountHash: reformat.mountHash });
  assert.deepEqual(d2.replaces, ["diskLayout"]);
  assert.equal(d2.deleteBeforeReplace, true);
});

test("NixosHost state from before the split (only layoutHash) still replaces on a layout change", () => {
  const olds = { connection: { host: "h" }, toplevel: "/nix/store/a", layoutHash: "1".repeat(64) };
  assert.deepEqual(diffHost(olds, { ...olds, layoutHash: "2".repeat(64), layoutFormatHash: "f", layoutMountHash: "m" }).replaces, ["diskLayout"]);
  assert.deepEqual(diffHost(olds, { ...olds, layoutFormatHash: "f", layoutMountHash: "m" }).replaces, []);
});

test("the preview line says which kind of layout change it is and why", async () => {

  const base = await hashes(layout());
  const olds = { connection: { host: "10.0.0.1" }, toplevel: "/nix/store/a", diskLayout: { declared: layout() }, layoutFormatHash: base.formatHash, layoutMountHash: base.mountHash };
  const mountOnly = await hashes(layout({ rootOptions: ["noatime"] }));
  const n1 = { ...olds, layoutFormatHash: mountOnly.formatHash, layoutMountHash: mountOnly.mountHash };
  assert.match(explainHostDiff(olds, n1, diffHost(olds, n1)).join("\n"), /diskLayout mounts .*nothing is reformatted/);
  const reformat = await hashes(layout({ rootFormat: "xfs" }));
  const n2 = { ...olds, layoutFormatHash: reformat.formatHash, layoutMountHash: reformat.mountHash };
  assert.match(explainHostDiff(olds, n2, diffHost(olds, n2)).join("\n"), /reinstall \(the disk layout changed in what only formatting can change.*\): wipes \/dev\/vda/);
});
