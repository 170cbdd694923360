// The layout's create script on a test host's loop disks, interrupted after each of its
// steps: the next run completes. And refusals: what the script will not wipe, it refuses
// before a byte of the disk changes. (Device-mapper, so LUKS and LV activation, exists only
// in the QEMU tier; PVs and VGs are metadata and work here.)
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { renderLayout, resolveLayout, type RenderedLayout } from "../../provider/disk";
import { diskoFailureHint, diskoPhase } from "../../provider/install/disko";
import type { InstallContext } from "../../provider/install";
import { NixosPulumiError } from "../../provider/errors";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { connect } from "../../provider/ssh";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { setToolTrap } from "../harness/tool-trap";
import { tutorialLayout } from "../fixtures/layouts";

let host: TestHost;
before(async () => {
  host = await startHost({ name: "disk-interrupt", state: "installer", disks: [{ name: "vda", sizeMiB: 384 }, { name: "vdb", sizeMiB: 64 }] });
});
after(async () => {
  await host?.exec("export DM_DISABLE_UDEV=1; swapoff -a; umount -R /mnt/home /mnt/boot 2>/dev/null; while findmnt -rn -o FSTYPE -M /mnt | tail -n 1 | grep -qv '^ext4$'; do umount /mnt || break; done; vgremove -ff -y span pool >/dev/null 2>&1; true").catch(() => undefined);
  await host?.stop();
});

const layout = {
  disk: {
    main: {
      device: "/dev/vda",
      content: {
        type: "gpt",
        partitions: {
          ESP: { size: "64M", type: "EF00", content: { type: "filesystem", format: "ext4", mountpoint: "/boot" } },
          swap: { size: "32M", content: { type: "swap" } },
          root: { size: "100%", content: { type: "btrfs", extraArgs: ["-f"], subvolumes: { "/root": { mountpoint: "/" }, "/home": { mountpoint: "/home", mountOptions: ["noatime"] } } } },
        },
      },
    },
  },
};

/** The create script's lines, split where the wipe starts. */
function steps(r: RenderedLayout): { prefix: string[]; steps: string[] } {
  const lines = r.script.split("\n");
  const start = lines.findIndex((l) => l.startsWith("echo 'disko: partitioning"));
  return { prefix: lines.slice(0, start + 1), steps: lines.slice(start + 1).filter((l) => l.trim() !== "") };
}

/** Mounts made from the layout's disk (by device number; btrfs mounts have an anonymous one), as "target fstype source". */
async function layoutMounts(): Promise<string[]> {
  const loop = host.loopDevices["vda"]!.replace("/dev/", "");
  const parts = (await host.run(`cat /sys/class/block/${loop}/${loop}p*/dev 2>/dev/null || true`)).split("\n").filter(Boolean);
  const out = await host.run("findmnt -rn -o TARGET,FSTYPE,MAJ:MIN,SOURCE");
  return out
    .split("\n")
    .map((l) => l.split(" "))
    .filter(([target, fstype, majmin]) => target!.startsWith("/mnt") && (parts.includes(majmin!) || fstype === "btrfs"))
    .map(([target, fstype, , source]) => `${target} ${fstype} ${source}`)
    .sort();
}

test("the create script, interrupted after any step, completes on the next run; the mount script runs again as a no-op", async () => {
  const r = renderLayout(await resolveLayout(layout));
  const { prefix, steps: cmds } = steps(r);
  assert.ok(cmds.length >= 12, `steps: ${cmds.length}`);
  for (let k = 1; k <= cmds.length; k++) {
    const cut = [...prefix, ...cmds.slice(0, k), "exit 99", ""].join("\n");
    const interrupted = await host.exec(`cat > /tmp/cut.sh && sh /tmp/cut.sh`, cut);
    assert.equal(interrupted.code, 99, `interrupted after step ${k} (${cmds[k - 1]}): ${interrupted.stderr}`);
    if (k % 4 === 0) await host.run("swapon /dev/vda2 2>/dev/null || true"); // a swap left on, as a booted system would
    const next = await host.exec(`cat > /tmp/full.sh && sh /tmp/full.sh`, r.script);
    assert.equal(next.code, 0, `after an interruption at step ${k} (${cmds[k - 1]}): ${next.stderr}`);
  }
  const mounts = await layoutMounts();
  assert.deepEqual(mounts.map((m) => m.split(" ").slice(0, 2).join(" ")), ["/mnt btrfs", "/mnt/boot ext4", "/mnt/home btrfs"]);
  assert.match(await host.run("findmnt -rn -o OPTIONS -M /mnt/home"), /noatime.*subvol=\/home/);
  await host.run("echo kept > /mnt/home/file");
  for (let i = 0; i < 2; i++) {
    const again = await host.exec(`cat > /tmp/mount.sh && sh /tmp/mount.sh`, r.mountScript);
    assert.equal(again.code, 0, again.stderr);
  }
  assert.deepEqual(await layoutMounts(), mounts, "mounting again changes nothing");
  assert.equal((await host.run("cat /mnt/home/file")).trim(), "kept");
  // The release script unmounts everything of the layout, and the mount script brings it back.
  await host.run("swapon /dev/vda2");
  await host.exec(`cat > /tmp/release.sh && sh /tmp/release.sh`, r.releaseScript).then((x) => assert.equal(x.code, 0, x.stderr));
  assert.deepEqual(await layoutMounts(), []);
  assert.doesNotMatch(await host.run("cat /proc/swaps"), /vda2/);
  await host.exec(`sh /tmp/mount.sh`).then((x) => assert.equal(x.code, 0, x.stderr));
  assert.equal((await host.run("cat /mnt/home/file")).trim(), "kept");
  await host.run("sh /tmp/release.sh");
});

async function diskSum(disk: string): Promise<string> {
  return (await host.run(`sha256sum /dev/${disk} | cut -d' ' -f1`)).trim();
}

test("a volume group reaching onto another disk is refused before the disk is touched", async () => {
  await host.run("swapoff -a; umount /mnt/home /mnt/boot 2>/dev/null; findmnt -rn -o SOURCE -M /mnt | tail -n 1 | grep -q '^/dev/vda' && umount /mnt; true");
  await host.run("sgdisk --zap-all /dev/vda >/dev/null && sgdisk --new=1:0:+100M /dev/vda >/dev/null && sgdisk --zap-all /dev/vdb >/dev/null && sgdisk --new=1:0:0 /dev/vdb >/dev/null");
  await host.syncPartitionNodes();
  await host.run("export DM_DISABLE_UDEV=1; pvcreate -ff -y /dev/vda1 /dev/vdb1 >/dev/null 2>&1 && vgcreate -y span /dev/vda1 /dev/vdb1 >/dev/null 2>&1");
  const before = await diskSum("vda");
  const r = renderLayout(await resolveLayout(layout));
  const run = await host.exec(`cat > /tmp/full.sh && sh /tmp/full.sh`, r.script);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /volume group span also has a physical volume outside the layout's disks \(\/dev\/vdb1\)/);
  assert.equal(await diskSum("vda"), before, "not a byte of /dev/vda changed");
  await host.run("export DM_DISABLE_UDEV=1; vgremove -ff -y span >/dev/null 2>&1; pvremove -ff -y /dev/vda1 /dev/vdb1 >/dev/null 2>&1; true");
});

test("a layout whose volume group name exists on another disk is refused before the disk is touched", async () => {
  await host.run("export DM_DISABLE_UDEV=1; pvcreate -ff -y /dev/vdb1 >/dev/null 2>&1 && vgcreate -y pool /dev/vdb1 >/dev/null 2>&1");
  const lvm = {
    disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { ESP: { size: "64M", content: { type: "filesystem", format: "ext4", mountpoint: "/boot" } }, pv: { size: "100%", content: { type: "lvm_pv", vg: "pool" } } } } } },
    lvm_vg: { pool: { lvs: { root: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } },
  };
  const before = await diskSum("vda");
  const run = await host.exec(`cat > /tmp/full.sh && sh /tmp/full.sh`, renderLayout(await resolveLayout(lvm)).script);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /a volume group named pool already exists on another disk/);
  assert.equal(await diskSum("vda"), before);
  await host.run("export DM_DISABLE_UDEV=1; vgremove -ff -y pool >/dev/null 2>&1; true");
});

test("a layout needing a tool this machine lacks is refused before the disk is touched", async () => {
  const f2fs = { disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "filesystem", format: "f2fs", mountpoint: "/" } } } } } } };
  const before = await diskSum("vda");
  const run = await host.exec(`cat > /tmp/full.sh && sh /tmp/full.sh`, renderLayout(await resolveLayout(f2fs)).script);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /this machine lacks mkfs\.f2fs, which the layout needs; nothing was changed/);
  assert.match(diskoFailureHint(run.stderr), /^A tool the installer lacks is taken from the system being installed \(its sw\/bin\): add its package to environment\.systemPackages; or let the layout bring its tools: a DiskLayout from your flake's disko script/);
  assert.equal(await diskSum("vda"), before);
});

test("a LUKS layout on an installer without cryptsetup (nixos-images' noninteractive one) is refused before the disk is touched, saying where the tool comes from", async () => {
  const luks = {
    disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "luks", name: "c", settings: { keyFile: "/tmp/k.key" }, content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } } } },
  };
  const before = await diskSum("vda");
  const cryptsetup = (await host.run("command -v cryptsetup")).trim();
  await host.run(`echo key > /tmp/k.key && touch /tmp/no-cryptsetup && mount --bind /tmp/no-cryptsetup ${cryptsetup}`);
  try {
    const run = await host.exec(`cat > /tmp/full.sh && sh /tmp/full.sh`, renderLayout(await resolveLayout(luks)).script);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /this machine lacks cryptsetup, which the layout needs; nothing was changed/);
    assert.match(diskoFailureHint(run.stderr), /^nixos-images' noninteractive kexec installer \(nixos-anywhere's default\) has no cryptsetup; a system with boot\.initrd\.luks\.devices .* carries it\. A tool the installer lacks is taken from the system being installed/);
    assert.equal(await diskSum("vda"), before);

    // The disko phase looks before it probes, opens or releases anything: the system being
    // installed (no LUKS device, so no cryptsetup on its path) cannot bring it either.
    const toplevel = await buildTestSystem({ label: "disk-interrupt-no-luks" });
    const spec = nixosHostSchema.parse({
      connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
      system: { storePath: toplevel },
      diskLayout: { declared: luks },
    });
    const session = await connect(spec.connection);
    const progress: string[] = [];
    const ctx = { spec, toplevel, layout: renderLayout(await resolveLayout(luks)), progress: (l: string) => progress.push(l), session, connect: () => connect(spec.connection) } as InstallContext;
    try {
      const err = await diskoPhase(ctx).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof NixosPulumiError, String(err));
      assert.match(err.message, /the layout needs cryptsetup, which the installer lacks and the system being installed does not carry; nothing was changed/);
      assert.match(err.message, /add its package to environment\.systemPackages; or let the layout bring its tools: a DiskLayout from your flake's disko script/);
      assert.ok(!progress.some((l) => /partitioning/.test(l)), progress.join("\n"));
    } finally {
      session.close();
    }
    assert.equal(await diskSum("vda"), before, "not a byte of /dev/vda changed");
  } finally {
    await host.run(`umount ${cryptsetup}; rm -f /tmp/no-cryptsetup /tmp/k.key`);
  }
});

test("a LUKS layout whose key file is not on the machine is refused before the disk is touched", async () => {
  const luks = {
    disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: { root: { size: "100%", content: { type: "luks", name: "c", settings: { keyFile: "/tmp/absent.key" }, content: { type: "filesystem", format: "ext4", mountpoint: "/" } } } } } } },
  };
  const before = await diskSum("vda");
  const run = await host.exec(`cat > /tmp/full.sh && sh /tmp/full.sh`, renderLayout(await resolveLayout(luks)).script);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /the key file \/tmp\/absent\.key is missing on this machine; nothing was changed \(give it in NixosHost install\.diskKeys/);
  assert.equal(await diskSum("vda"), before);
});

test("the release unmounts a mount point with a space in its name, and stops at a busy filesystem instead of detaching it", async () => {
  const r = renderLayout(await resolveLayout(layout));
  await host.exec(`cat > /tmp/full.sh && sh /tmp/full.sh`, r.script).then((x) => assert.equal(x.code, 0, x.stderr));
  await host.exec(`cat > /tmp/release.sh`, r.releaseScript);
  // The ESP mounted a second time where mountinfo writes the path as /mnt/a\040dir.
  await host.run("mkdir -p '/mnt/a dir' && mount /dev/vda1 '/mnt/a dir'");
  const pid = (await host.run("cd /mnt/boot && setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!")).trim();
  try {
    const busy = await host.exec("sh /tmp/release.sh");
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /^\/mnt\/boot is busy \(a process uses it: fuser -vm '\/mnt\/boot' names it\); stop that process and run again; nothing was wiped$/m);
    assert.equal((await host.run("findmnt -rn -o TARGET -M /mnt/boot")).trim(), "/mnt/boot", "the busy filesystem is still mounted, not detached lazily");
  } finally {
    await host.run(`kill ${pid}; while kill -0 ${pid} 2>/dev/null; do sleep 0.1; done`);
  }
  const released = await host.exec("sh /tmp/release.sh");
  assert.equal(released.code, 0, released.stderr);
  assert.deepEqual(await layoutMounts(), []);
  assert.equal((await host.run("findmnt -rn -M '/mnt/a dir' || true")).trim(), "");
});

const tmpfsRootPartitions = {
  ESP: { size: "64M", content: { type: "filesystem", format: "ext4", mountpoint: "/boot" } },
  nix: { size: "256M", content: { type: "btrfs", extraArgs: ["-f"], subvolumes: { "/nix": { mountpoint: "/nix" }, "/nix/sub": {}, "/swap": { mountpoint: "/.swapvol", swap: { swapfile: { size: "16M" } } } } } },
  swap: { size: "100%", content: { type: "swap", randomEncryption: true } },
};

test("the layout scripts call only the programs the layout declares (its nodes' tools and the preamble's)", async () => {
  const layouts: Record<string, unknown> = {
    // Tier 1's kernel has no vfat: an ext4 ESP.
    "tutorial, xfs root": tutorialLayout("/dev/vda", "xfs", "ext4", "64M"),
    "btrfs subvolumes, swap partition": layout,
    "tmpfs root, btrfs swap file, random-encryption swap": {
      disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions: tmpfsRootPartitions } } },
      nodev: { "/": { fsType: "tmpfs", mountOptions: ["size=16M", "mode=755"] } },
    },
  };
  for (const [name, declared] of Object.entries(layouts)) {
    const r = renderLayout(await resolveLayout(declared as Record<string, unknown>));
    const trap = await setToolTrap((c) => host.run(c), [...r.tools, ...r.optionalTools]);
    try {
      await host.exec("cat > /tmp/create.sh", r.script);
      await host.exec("cat > /tmp/mount.sh", r.mountScript);
      await host.exec("cat > /tmp/release.sh", r.releaseScript);
      for (const [script, before] of [["create", ""], ["mount", ""], ["release", "swapon /dev/vda2 2>/dev/null; "], ["mount", ""], ["release", ""]] as const) {
        const run = await host.exec(`${before}${trap.sh(`/tmp/${script}.sh`)}`);
        assert.equal(run.code, 0, `${name}: the ${script} script: ${run.stderr}`);
      }
      assert.deepEqual(await trap.undeclared(), [], `${name}: programs called but not declared by the layout's nodes or the preamble`);
    } finally {
      await trap.remove();
      // The tmpfs root is no disk's: releasing leaves it.
      await host.run(`[ "$(findmnt -rn -o FSTYPE -M /mnt | tail -n 1)" != tmpfs ] || umount /mnt`);
    }
  }
});
