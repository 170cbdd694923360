// The layout scripts on device-mapper, in the installer on Debian's kernel (this machine's
// kernel has no device-mapper): a LUKS + LVM layout created, created again while its LUKS is
// open, its VG active and its filesystems mounted; the mount script run again as a no-op;
// the create script interrupted after each device-mapper step, then completed by the next run.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { renderLayout, resolveLayout, type RenderedLayout } from "../../provider/disk";
import { runInstall, type InstallContext } from "../../provider/install";
import { connect } from "../../provider/ssh";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startVm, type TestVm } from "../harness/vm";

let vm: TestVm;
let ctx: InstallContext;
const KEY = "/tmp/disk.key";

const layout = {
  disk: {
    main: {
      device: "/dev/vda",
      content: {
        type: "gpt",
        partitions: {
          ESP: { size: "64M", type: "EF00", content: { type: "filesystem", format: "vfat", mountpoint: "/boot", mountOptions: ["umask=0077"] } },
          crypt: {
            size: "100%",
            content: {
              type: "luks",
              name: "crypted",
              // TCG is slow: a cheap KDF keeps each luksFormat/open to a second.
              extraFormatArgs: ["--pbkdf pbkdf2 --pbkdf-force-iterations 1000"],
              settings: { keyFile: KEY, allowDiscards: true },
              content: { type: "lvm_pv", vg: "pool" },
            },
          },
        },
      },
    },
  },
  lvm_vg: { pool: { lvs: { root: { size: "200M", content: { type: "filesystem", format: "ext4", mountpoint: "/" } }, home: { size: "100%", content: { type: "filesystem", format: "ext4", mountpoint: "/home" } } } } },
};

let rendered: RenderedLayout;
async function sh(script: string): Promise<{ code: number; stderr: string }> {
  const r = await ctx.session.exec("cat > /tmp/s.sh && sh /tmp/s.sh", { stdin: script });
  return { code: r.code ?? -1, stderr: r.stderr };
}
async function mounts(): Promise<string> {
  return (await ctx.session.exec("findmnt -rn -o TARGET,SOURCE,FSTYPE | grep '^/mnt' | sort")).stdout.trim();
}

before(async () => {
  vm = await startVm({ diskSizeMiB: 1024 });
  await vm.waitForSsh(120_000);
  rendered = renderLayout(await resolveLayout(layout));
  const spec = nixosHostSchema.parse({
    connection: { host: vm.address, port: vm.sshPort, privateKey: vm.images.clientPrivateKey, hostKey: vm.images.rescueHostKey },
    system: { storePath: "/nix/store/00000000000000000000000000000000-unused" },
    diskLayout: { declared: layout },
    install: { kexecTarball: vm.images.kexecTarball, timeouts: { kexecSeconds: 180 } },
  });
  const open = (hostKey?: string) => connect({ ...spec.connection, hostKey: undefined }, { pinnedHostKey: hostKey });
  ctx = { spec, toplevel: "", layout: rendered, progress: () => {}, session: await open(vm.images.rescueHostKey), connect: open } as InstallContext;
  await runInstall(ctx, ["kexec"]);
  await ctx.session.execOk(`printf secret > ${KEY} && chmod 600 ${KEY}`, "test: key");
});

after(async (t) => {
  t.diagnostic(`console (tail):\n${vm?.consoleText().slice(-2000)}`);
  ctx?.session.close();
  await vm?.stop();
});

test("created; created again with LUKS open, VG active and everything mounted; the mount script again is a no-op", async () => {
  let r = await sh(rendered.script);
  assert.equal(r.code, 0, r.stderr);
  const first = await mounts();
  assert.match(first, /^\/mnt \/dev\/mapper\/pool-root ext4$/m);
  assert.match(first, /^\/mnt\/boot \S+ vfat$/m);
  assert.match(first, /^\/mnt\/home \/dev\/mapper\/pool-home ext4$/m);
  r = await sh(rendered.mountScript);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await mounts(), first, "mounting again changes nothing");
  await ctx.session.execOk("echo old > /mnt/home/file", "test");
  r = await sh(rendered.script);
  assert.equal(r.code, 0, `the create script releases the open LUKS volume and active VG first: ${r.stderr}`);
  assert.equal(await mounts(), first);
  assert.notEqual((await ctx.session.exec("test -e /mnt/home/file")).code, 0, "formatted anew");
  // Released: nothing of the layout stays open.
  r = await sh(rendered.releaseScript);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await mounts(), "");
  assert.equal((await ctx.session.exec("ls /dev/mapper")).stdout.trim().split(/\s+/).filter((n) => n !== "control").join(" "), "");
});

test("interrupted after each device-mapper step, the next run completes", async () => {
  const lines = rendered.script.split("\n");
  const start = lines.findIndex((l) => l.startsWith("echo 'disko: partitioning"));
  const prefix = lines.slice(0, start + 1);
  const steps = lines.slice(start + 1).filter((l) => l.trim() !== "");
  const first = steps.findIndex((l) => l.includes("luksFormat"));
  for (let k = first + 1; k <= steps.length; k++) {
    const cut = await sh([...prefix, ...steps.slice(0, k), "exit 99", ""].join("\n"));
    assert.equal(cut.code, 99, `interrupted after ${steps[k - 1]}: ${cut.stderr}`);
    const next = await sh(rendered.script);
    assert.equal(next.code, 0, `after an interruption at ${steps[k - 1]}: ${next.stderr}`);
  }
  assert.match(await mounts(), /^\/mnt \/dev\/mapper\/pool-root ext4$/m);
});
