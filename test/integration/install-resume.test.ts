// The install phases on a test host in the "installer" state with a loop disk: an install
// interrupted after the disko phase resumes on the same layout instead of wiping it again.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { renderLayout, resolveLayout } from "../../provider/disk";
import { runInstall, type InstallContext } from "../../provider/install";
import { connect } from "../../provider/ssh";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHost, type TestHost } from "../harness/hosts";
import { startProxy } from "../harness/proxy";
import { buildTestSystem } from "../harness/systems";
import { tutorialLayout } from "../fixtures/layouts";

let host: TestHost;
before(async () => {
  host = await startHost({ name: "resume", state: "installer", disks: [{ name: "vda", sizeMiB: 1024 }] });
});
after(async () => {
  await host?.run("umount -R /mnt 2>/dev/null; true").catch(() => undefined);
  await host?.stop();
});

async function context(toplevel: string, rootFormat = "ext4", lines: string[] = []): Promise<InstallContext> {
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
    diskLayout: { declared: tutorialLayout("/dev/vda", rootFormat, "ext4") },
  });
  const open = () => connect(spec.connection);
  return {
    spec,
    toplevel,
    layout: renderLayout(await resolveLayout(tutorialLayout("/dev/vda", rootFormat, "ext4"))),
    progress: (l) => lines.push(l),
    session: await open(),
    connect: open,
  };
}

test("a copy into /mnt cut mid-way reconnects over the connection it came on (root@installer), not the declared one", async () => {
  const toplevel = await buildTestSystem({ label: "resume-cut", fillerCount: 4, fillerBytes: 8 * 1024 * 1024 });
  const proxy = await startProxy({ target: { host: host.address, port: host.port } });
  proxy.setRate(4 * 1024 * 1024);
  // Declared: the rescue system's SSH port, where the installer has nothing listening.
  const spec = nixosHostSchema.parse({
    connection: { host: "127.0.0.1", port: 2, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, dialErrorLimit: 2 },
    system: { storePath: toplevel },
    diskLayout: { declared: tutorialLayout("/dev/vda", "ext4", "ext4") },
  });
  const afterKexec = { ...spec.connection, host: proxy.address, port: proxy.port };
  const lines: string[] = [];
  let cut = false;
  const ctx: InstallContext = {
    spec,
    toplevel,
    layout: renderLayout(await resolveLayout(tutorialLayout("/dev/vda", "ext4", "ext4"))),
    progress: (line) => {
      lines.push(line);
      const m = /copy: \d+\/\d+ paths, ([\d.]+)\/([\d.]+) MiB/.exec(line);
      if (!cut && m && Number(m[1]) >= 0.4 * Number(m[2])) {
        cut = true;
        lines.push("-- cut --");
        proxy.cut();
      }
    },
    session: await connect(afterKexec),
    // As installHost's: a connection named by the phase, else the declared one.
    connect: (hostKey, connection) => connect({ ...(connection ?? spec.connection), hostKey }),
  };
  try {
    await runInstall(ctx, ["disko", "install"]);
  } finally {
    ctx.session.close();
    await proxy.close();
    await host.run("umount -R /mnt 2>/dev/null; true");
  }
  assert.ok(cut, lines.join("\n"));
  assert.match(lines.join("\n"), /-- cut --[\s\S]*reconnecting to resume/);
});

test("a retried install of the same layout mounts the disks again instead of wiping them", async () => {
  const toplevel = await buildTestSystem({ label: "resume-v1" });
  const first = await context(toplevel);
  await runInstall(first, ["disko"]);
  first.session.close();
  await host.run("echo precious > /mnt/survivor && umount -R /mnt");

  const lines: string[] = [];
  const retry = await context(toplevel, "ext4", lines);
  await runInstall(retry, ["disko", "install"]);
  retry.session.close();
  assert.ok(lines.some((l) => /already hold this layout/.test(l)), lines.join("\n"));
  assert.equal(await host.run("cat /mnt/survivor"), "precious");
  assert.equal((await host.run("readlink -f /mnt/nix/var/nix/profiles/system")).trim(), toplevel);
  await host.run("umount -R /mnt");
});

test("a different layout is wiped and formatted anew", async () => {
  const toplevel = await buildTestSystem({ label: "resume-v1" });
  const lines: string[] = [];
  const other = await context(toplevel, "xfs", lines);
  await runInstall(other, ["disko"]);
  other.session.close();
  assert.ok(!lines.some((l) => /already hold this layout/.test(l)));
  // The host's /mnt is itself a bind mount: the layout's root is the top one.
  assert.equal((await host.run("findmnt -no FSTYPE /mnt | tail -n 1")).trim(), "xfs");
  assert.notEqual((await host.exec("test -e /mnt/survivor")).code, 0, "the old root filesystem is gone");
});

test("a layout larger than the machine's disk is refused in the facts step, naming the partition, before anything is written", async () => {
  await host.run("umount -R /mnt 2>/dev/null; true");
  const toplevel = await buildTestSystem({ label: "resume-v1" });
  const tooBig = {
    disk: {
      main: {
        device: "/dev/vda",
        content: {
          type: "gpt" as const,
          partitions: {
            ESP: { priority: 1, size: "500M", type: "EF00", content: { type: "filesystem" as const, format: "ext4", mountpoint: "/boot" } },
            root: { priority: 2, size: "2G", content: { type: "filesystem" as const, format: "ext4", mountpoint: "/" } },
          },
        },
      },
    },
  };
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
    diskLayout: { declared: tooBig },
  });
  const before = await host.run("sgdisk --print /dev/vda; dd if=/dev/vda bs=1M count=2 status=none | sha256sum");
  const lines: string[] = [];
  const ctx: InstallContext = { spec, toplevel, layout: renderLayout(await resolveLayout(tooBig)), progress: (l) => lines.push(l), session: await connect(spec.connection), connect: () => connect(spec.connection) };
  try {
    await assert.rejects(runInstall(ctx, ["disko", "install"]), (err: Error) => {
      assert.match(err.message, /\[[\d.]+: facts\] diskLayout disk "main": root needs 2 GiB from 501 MiB after ESP, but \/dev\/vda \(1 GiB\) has \d+ MiB left there; make root at most \d+ MiB \(or "100%", the rest of the disk\)/);
      assert.match(err.message, /nothing was written/);
      assert.match(err.message, /fix: change disk\.main\.content\.partitions\.root\.size in the DiskLayout/);
      return true;
    });
  } finally {
    ctx.session.close();
  }
  assert.ok(!lines.some((l) => /disko: start/.test(l)), lines.join("\n"));
  assert.equal(await host.run("sgdisk --print /dev/vda; dd if=/dev/vda bs=1M count=2 status=none | sha256sum"), before, "the disk is as it was");
});
