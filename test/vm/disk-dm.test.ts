// The layout scripts on device-mapper, in the installer on Debian's kernel (this machine's
// kernel has no device-mapper). One VM, one kexec, two disks: the layout's /dev/vda and a
// second disk /dev/vdb that later holds another volume group of the same name. The installer
// has no cryptsetup (as nixos-images' noninteractive one): the scripts run with the one the
// provider brings from the system being installed.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { renderLayout, resolveLayout, type RenderedLayout } from "../../provider/disk";
import { runInstall, type InstallContext } from "../../provider/install";
import { diskoPhase } from "../../provider/install/disko";
import { bringLayoutTools, withTools } from "../../provider/install/layout-tools";
import { connect } from "../../provider/ssh";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startVm, type TestVm } from "../harness/vm";
import { luksLvmLayout } from "../fixtures/layouts";
import { buildTestSystem, layoutSystemOptions } from "../harness/systems";
import { shellQuote } from "../../provider/util/shell-quote";
import { setToolTrap, type ToolTrap } from "../harness/tool-trap";

let vm: TestVm;
let ctx: InstallContext;
const KEY = "/tmp/disk.key";

const layout = luksLvmLayout({ espSize: "32M", rootSize: "64M", keyFile: KEY, espMountOptions: ["umask=0077"] });

let rendered: RenderedLayout;
/** The directory of the tools the provider brought from the system (cryptsetup), first in PATH. */
let tools: string | undefined;
/** The layout's scripts find only the programs it declares (the brought ones among them). */
let trap: ToolTrap;
async function sh(script: string): Promise<{ code: number; stderr: string }> {
  const r = await ctx.session.exec(`cat > /tmp/s.sh && ${trap.sh("/tmp/s.sh")}`, { stdin: script });
  return { code: r.code ?? -1, stderr: r.stderr };
}
async function run(command: string): Promise<string> {
  return ctx.session.execOk(withTools(tools, `sh -c ${shellQuote(command)}`), `test: ${command}`);
}
async function mounts(): Promise<string> {
  return (await ctx.session.exec("findmnt -rn -o TARGET,SOURCE,FSTYPE | grep '^/mnt' | sort")).stdout.trim();
}
/** Device-mapper devices open in the guest, by name. */
async function mapped(): Promise<string> {
  return (await run("ls /dev/mapper")).trim().split(/\s+/).filter((n) => n !== "control").sort().join(" ");
}
const EXPECTED_MOUNTS = [/^\/mnt \/dev\/mapper\/pool-root ext4$/m, /^\/mnt\/boot \/dev\/vda1 vfat$/m, /^\/mnt\/home \/dev\/mapper\/pool-home ext4$/m];

before(async () => {
  vm = await startVm({ diskSizeMiB: 320, extraDisksMiB: [32] });
  await vm.waitForSsh(120_000);
  rendered = renderLayout(await resolveLayout(layout));
  const spec = nixosHostSchema.parse({
    connection: { host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey: vm.images.rescueHostKey },
    system: { storePath: "/nix/store/00000000000000000000000000000000-unused" },
    diskLayout: { declared: layout },
    install: { kexecTarball: vm.images.kexecTarball, timeouts: { kexecSeconds: 180 }, diskKeys: { [KEY]: "secret" } },
  });
  const open = (hostKey?: string) => connect({ ...spec.connection, hostKey: undefined }, { pinnedHostKey: hostKey });
  // The system being installed, as one importing the layout's NixOS module: its LUKS device
  // puts cryptsetup on its path (luksroot.nix).
  const { luksDevices } = await layoutSystemOptions(layout);
  const toplevel = await buildTestSystem({ label: "vm-disk-dm", vmRuntime: vm.images.runtime, luksDevices, cryptsetup: vm.images.cryptsetup });
  ctx = { spec, toplevel, layout: rendered, progress: () => {}, session: await open(vm.images.rescueHostKey), connect: open } as InstallContext;
  await runInstall(ctx, ["kexec"]);
  assert.notEqual((await ctx.session.exec("command -v cryptsetup")).code, 0, "the installer has no cryptsetup");
  await run(`mkdir -p -m 0700 /tmp/dm-run && printf secret > ${KEY} && chmod 600 ${KEY}`);
  tools = await bringLayoutTools(ctx, rendered.tools, "/tmp/dm-run");
  assert.ok(tools, "cryptsetup brought from the system");
  // dirname: the images' cryptsetup package is a wrapper script that calls it (build-vm-images.sh); nixpkgs' is a binary.
  trap = await setToolTrap(run, [...rendered.tools, ...rendered.optionalTools, "dirname"]);
});

after(async (t) => {
  t.diagnostic(`console (tail):\n${vm?.consoleText().slice(-2000)}`);
  ctx?.session.close();
  await vm?.stop();
});

test("created; created again with LUKS open, VG active and mounted; mounted again as a no-op; released; mounted again from closed LUKS", async () => {
  let r = await sh(rendered.script);
  assert.equal(r.code, 0, r.stderr);
  const first = await mounts();
  for (const m of EXPECTED_MOUNTS) assert.match(first, m);
  r = await sh(rendered.mountScript);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await mounts(), first, "mounting again changes nothing");

  await run("echo old > /mnt/home/file");
  r = await sh(rendered.script);
  assert.equal(r.code, 0, `the create script releases the open LUKS volume and active VG first: ${r.stderr}`);
  assert.equal(await mounts(), first);
  assert.notEqual((await ctx.session.exec("test -e /mnt/home/file")).code, 0, "formatted anew");

  await run("echo ours > /mnt/ours && echo kept > /mnt/home/kept");
  r = await sh(rendered.releaseScript);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await mounts(), "");
  assert.equal(await mapped(), "", "LVs deactivated, then LUKS closed");

  r = await sh(rendered.mountScript);
  assert.equal(r.code, 0, `the mount script opens LUKS and activates the VG: ${r.stderr}`);
  assert.equal(await mounts(), first);
  assert.equal((await run("cat /mnt/ours /mnt/home/kept")).trim(), "ours\nkept", "the existing filesystems, not new ones");
  assert.match(await run("cryptsetup status crypted"), /flags:.*discards/, "opened with settings.allowDiscards");
});

test("another disk holds a volume group of the same name: only the layout's is activated, mounted and released; the create script refuses", async () => {
  let r = await sh(rendered.releaseScript);
  assert.equal(r.code, 0, r.stderr);
  try {
    // The layout's LUKS is closed: LVM sees only /dev/vdb's "pool", and activates its LV.
    await run("pvcreate -q -ff -y /dev/vdb >/dev/null && vgcreate -q pool /dev/vdb >/dev/null && lvcreate -q -y -L 8M -n root pool >/dev/null");
    assert.equal(await mapped(), "pool-root");

    r = await sh(rendered.mountScript);
    assert.notEqual(r.code, 0, "its pool-root would take the name of the other disk's active LV");
    assert.match(r.stderr, /a volume group named pool is active from another disk \(pool-root on vdb\); deactivate it \(vgchange -an --select vg_uuid=\S+\) or rename the layout's lvm_vg pool/);
    assert.equal(await mounts(), "");

    await run("vgchange -an --devices /dev/vdb pool >/dev/null");
    r = await sh(rendered.mountScript);
    assert.equal(r.code, 0, r.stderr);
    for (const m of EXPECTED_MOUNTS) assert.match(await mounts(), m);
    assert.equal((await run("cat /mnt/ours")).trim(), "ours", "the layout's VG is mounted, not the other disk's");
    assert.equal(await mapped(), "crypted pool-home pool-root");

    const before = await mounts();
    r = await sh(rendered.script);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /a volume group named pool already exists on another disk of this machine \(\/dev\/vdb\); rename the layout's lvm_vg pool/);
    assert.equal(await mounts(), before, "refused before releasing anything");

    r = await sh(rendered.releaseScript);
    assert.equal(r.code, 0, `released by VG UUID although two VGs are named pool: ${r.stderr}`);
    assert.equal(await mounts(), "");
    assert.equal(await mapped(), "");
    assert.match(await run("vgs --noheadings -o vg_name,lv_count pool"), /pool\s+1/, "the other disk's VG is untouched");
  } finally {
    // The next test's create script would refuse while the other disk's "pool" exists.
    await run("vgchange -an --devices /dev/vdb pool >/dev/null 2>&1; wipefs -q -a /dev/vdb");
  }
});

test("interrupted after each device-mapper step, the next run completes", async () => {
  const lines = rendered.script.split("\n");
  const start = lines.findIndex((l) => l.startsWith("echo 'disko: partitioning"));
  const steps = lines.slice(start + 1).filter((l) => l.trim() !== "");
  const cuts = steps.flatMap((l, i) => (/^(\S+ \| )?(cryptsetup|pvcreate|vgcreate|lvcreate) /.test(l) ? [i + 1] : []));
  assert.equal(cuts.length, 6, "luksFormat, open, pvcreate, vgcreate, two lvcreate");
  for (const k of cuts) {
    const cut = await sh([...lines.slice(0, start + 1), ...steps.slice(0, k), "exit 99", ""].join("\n"));
    assert.equal(cut.code, 99, `interrupted after ${steps[k - 1]}: ${cut.stderr}`);
    const next = await sh(rendered.script);
    assert.equal(next.code, 0, `after an interruption at ${steps[k - 1]}: ${next.stderr}`);
  }
  for (const m of EXPECTED_MOUNTS) assert.match(await mounts(), m);
  const r = await sh(rendered.releaseScript);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await mapped(), "");
});

test("the disko phase: the same layout again mounts and wipes nothing; a changed layout on the open LUKS+LVM disk is released and reinstalled", async () => {
  const log: string[] = [];
  ctx.progress = (m) => log.push(m);
  ctx.layout = rendered;
  await diskoPhase(ctx);
  for (const m of EXPECTED_MOUNTS) assert.match(await mounts(), m);
  await run("echo kept > /mnt/home/kept");

  // An interrupted install run again: the probe finds this layout (LUKS already open, VG active).
  log.length = 0;
  await diskoPhase(ctx);
  assert.ok(log.some((l) => /already hold this layout/.test(l)), log.join("\n"));
  assert.equal((await run("cat /mnt/home/kept")).trim(), "kept");

  // A reinstall after a layout change: the probe opens and activates the old layout, then
  // releases it; the create script wipes and formats.
  const changed = structuredClone(layout);
  changed.lvm_vg.pool.lvs.root.size = "72M";
  ctx.layout = renderLayout(await resolveLayout(changed));
  log.length = 0;
  await diskoPhase(ctx);
  assert.ok(log.some((l) => /partitioning, formatting and mounting/.test(l)), log.join("\n"));
  for (const m of EXPECTED_MOUNTS) assert.match(await mounts(), m);
  assert.notEqual((await ctx.session.exec("test -e /mnt/home/kept")).code, 0, "formatted anew");
  assert.match(await run("lvs --noheadings --units m -o lv_size pool/root"), /72\.00m/);
  const r = await sh(ctx.layout.releaseScript);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await mapped(), "");
});

test("the scripts above called only programs the layout declares (its nodes' tools and the preamble's)", async () => {
  assert.deepEqual(await trap.undeclared(), []);
});
