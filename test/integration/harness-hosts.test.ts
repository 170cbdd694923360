// The tier-1 test hosts themselves: real sshd per host, isolated state, loop disks,
// switching a test system, and teardown that leaves nothing behind.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Client } from "ssh2";
import { execa } from "execa";
import { startHost, startHosts, installSystemDirectly, copyToHostStore, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { publicKeyLine, sameHostKey } from "../../provider/ssh";

const started: TestHost[] = [];
after(async () => {
  await Promise.all(started.map((h) => h.stop()));
});

/** The test service's answer on the host's address, port 8080 (read from the deployer). */
async function httpGet(host: TestHost): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      const response = await fetch(`http://${host.address}:8080/`);
      return (await response.text()).trim();
    } catch (err) {
      if (i >= 30) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Logs in with ssh2 and the test key, verifying the host key, and runs one command. */
function sshRun(host: TestHost, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client
      .on("ready", () => {
        client.exec(command, (err, stream) => {
          if (err) return reject(err);
          let out = "";
          stream.on("data", (d: Buffer) => (out += d.toString()));
          stream.on("close", () => {
            client.end();
            resolve(out.trim());
          });
        });
      })
      .on("error", reject)
      .connect({
        host: host.address,
        port: host.port,
        username: "root",
        privateKey: host.clientPrivateKey,
        hostVerifier: (key: Buffer) => sameHostKey(publicKeyLine(key), host.hostPublicKey),
      });
  });
}

test("each host answers SSH on its own address with its own host key, hostname and state", async () => {
  const hosts = await startHosts(3, { name: "iso", state: "installer" });
  started.push(...hosts);
  assert.equal(new Set(hosts.map((h) => h.address)).size, 3);
  assert.equal(new Set(hosts.map((h) => h.hostPublicKey)).size, 3);
  for (const host of hosts) {
    assert.equal(await sshRun(host, "hostname; cat /etc/test-host-state"), `${host.name}\ninstaller`);
  }
});

test("a rescue host has no /nix content; an installer host has an empty, working store", async () => {
  const rescue = await startHost({ name: "resc", state: "rescue" });
  started.push(rescue);
  assert.equal(await sshRun(rescue, "cat /etc/test-host-state; ls -A /nix | wc -l"), "rescue\n0");
  const installer = started.find((h) => h.name === "iso1")!;
  assert.equal(await sshRun(installer, "nix-store -q --references /nix/var/nix/profiles/system 2>/dev/null || echo none; ls /nix/store | wc -l"), "none\n0");
});

test("a file and a store path written on one host are absent on another", async () => {
  const [a, b] = started as [TestHost, TestHost];
  const system = await buildTestSystem({ label: "isolation" });
  await copyToHostStore(a, system);
  await sshRun(a, "echo hello > /etc/only-on-a; echo x > /root/only-on-a");
  assert.equal(await sshRun(a, `nix-store --check-validity ${system} && echo valid`), "valid");
  assert.equal(await sshRun(b, `nix-store --check-validity ${system} 2>/dev/null && echo valid || echo absent`), "absent");
  assert.equal(await sshRun(b, "test -e /etc/only-on-a && echo present || echo absent"), "absent");
  assert.equal(await sshRun(b, "test -e /root/only-on-a && echo present || echo absent"), "absent");
  assert.ok(!readFileSync("/etc/machine-id", "utf8").includes(await sshRun(a, "cat /etc/machine-id")), "own machine-id");
});

test("a loop disk inside a host can be partitioned and formatted, and its partitions show up", async () => {
  const host = await startHost({ name: "disk", state: "installer", disks: [{ name: "vda", sizeMiB: 128 }] });
  started.push(host);
  await host.run("sgdisk --zap-all /dev/vda >/dev/null && sgdisk -n 1:0:+32M -t 1:EF00 -c 1:esp -n 2:0:0 -t 2:8300 -c 2:root /dev/vda >/dev/null");
  await host.syncPartitionNodes();
  await host.run("mkfs.vfat -n ESP /dev/vda1 >/dev/null && mkfs.ext4 -q -L root /dev/vda2");
  const table = await host.run("sgdisk -p /dev/vda");
  assert.match(table, /EF00\s+esp/);
  assert.match(table, /8300\s+root/);
  assert.equal((await host.run("blkid -s LABEL -o value /dev/vda2")).trim(), "root");
  await host.run("mount /dev/vda2 /mnt && touch /mnt/written && umount /mnt");
  // The partitions are the host's disk's, not the deployer's.
  const loop = host.loopDevices["vda"]!;
  const { stdout } = await execa("lsblk", ["-no", "NAME", loop]);
  assert.equal(stdout.trim().split("\n").length, 3, "loop device has two partitions");
  // Repartitioned to one partition: the node of the partition that is gone disappears.
  await host.run("sgdisk --zap-all /dev/vda >/dev/null && sgdisk -n 1:0:0 /dev/vda >/dev/null");
  await host.syncPartitionNodes();
  assert.equal((await host.run("ls /dev | grep '^vda' | sort | tr '\\n' ' '")).trim(), "vda vda1");
});

test("switching a test system changes /run/current-system, /etc and the running service", async () => {
  const [v1, v2] = await Promise.all([buildTestSystem({ label: "h-v1" }), buildTestSystem({ label: "h-v2" })]);
  const host = await startHost({ name: "sw", state: "nixos", system: v1 });
  started.push(host);
  assert.equal(await httpGet(host), "h-v1");
  const pid1 = (await host.run("cat /run/test-service.pid")).trim();
  await installSystemDirectly(host, v2);
  assert.equal((await host.run("readlink /run/current-system")).trim(), v2);
  assert.equal((await host.run("cat /etc/nixos-test-release")).trim(), "h-v2");
  assert.equal((await host.run("readlink /etc/static")).trim(), `${v2}/etc`);
  assert.equal((await host.run("readlink /nix/var/nix/profiles/system")).trim(), "system-2-link");
  const pid2 = (await host.run("cat /run/test-service.pid")).trim();
  assert.notEqual(pid1, pid2);
  assert.match(await host.run(`cat /proc/${pid2}/cmdline | tr '\\0' ' '`), /test-service-h-v2/);
  assert.notEqual((await host.exec(`kill -0 ${pid1}`)).code, 0, "the old service was stopped");
  assert.equal((await host.exec(`${v2}/bin/health`)).code, 0, "the new system is healthy");
  assert.equal(await httpGet(host), "h-v2", "the service answers with the new label");
  assert.equal((await host.exec(`${v1}/bin/health`)).code, 1, "the old system's health check fails");
  assert.equal((await host.run("ps -o stat | grep -c '^Z' || true")).trim(), "0", "no zombies: the host's init reaps");

  // boot only changes the bootloader stand-in; test does not touch it.
  const v3 = await buildTestSystem({ label: "h-v3", kernelVersion: "6.2.0-test" });
  await copyToHostStore(host, v3);
  await host.run(`nix-env -p /nix/var/nix/profiles/system --set ${v3} && ${v3}/bin/switch-to-configuration boot`);
  assert.equal((await host.run("cat /boot/default-system")).trim(), v3);
  assert.equal((await host.run("readlink /run/current-system")).trim(), v2);
  assert.notEqual((await host.run(`readlink -f ${v3}/kernel`)).trim(), (await host.run(`readlink -f ${v2}/kernel`)).trim(), "a changed kernel");
  await host.run(`${v3}/bin/switch-to-configuration test`);
  assert.equal((await host.run("readlink /run/current-system")).trim(), v3);
  assert.equal(await httpGet(host), "h-v3");
});

test("failing variants exit like switch-to-configuration-ng: 2 on a failed activation script, 4 when units failed", async () => {
  const host = started.find((h) => h.name === "sw")!;
  const [fail, units] = await Promise.all([
    buildTestSystem({ label: "h-fail", variant: "fail" }),
    buildTestSystem({ label: "h-units", variant: "units-failed" }),
  ]);
  const before = (await host.run("readlink /run/current-system")).trim();
  await copyToHostStore(host, fail);
  await copyToHostStore(host, units);
  const failed = await host.exec(`${fail}/bin/switch-to-configuration test`);
  assert.equal(failed.code, 2);
  assert.match(failed.stderr, /Activation script snippet 'etc' failed/);
  assert.equal((await host.run("readlink /run/current-system")).trim(), before, "a failed activation script changes nothing");
  const partly = await host.exec(`${units}/bin/switch-to-configuration test`);
  assert.equal(partly.code, 4);
  assert.match(partly.stderr, /test-broken\.service/);
  assert.equal((await host.run("readlink /run/current-system")).trim(), units);
  assert.equal((await host.exec(`${units}/bin/switch-to-configuration dry-activate`)).code, 0);
  assert.equal((await host.exec(`${units}/bin/switch-to-configuration bogus`)).code, 1);
});

test("the cut-ssh variant drops open SSH sessions and sshd answers again a few seconds later", async () => {
  const host = started.find((h) => h.name === "sw")!;
  const cut = await buildTestSystem({ label: "h-cut", variant: "cut-ssh" });
  await copyToHostStore(host, cut);
  const client = new Client();
  const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
  await new Promise<void>((resolve, reject) =>
    client.on("ready", () => resolve()).on("error", reject).connect({ host: host.address, port: 22, username: "root", privateKey: host.clientPrivateKey }),
  );
  const result = await host.exec(`${cut}/bin/switch-to-configuration test`);
  assert.equal(result.code, 0, result.stderr);
  await closed; // the open session was cut
  assert.equal((await host.run("readlink /run/current-system")).trim(), cut);
  const t = Date.now();
  for (;;) {
    try {
      assert.equal(await sshRun(host, "hostname"), "sw");
      break;
    } catch (err) {
      if (Date.now() - t > 10_000) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
});

test("teardown leaves no loop device, mount or process behind", async () => {
  const host = await startHost({ name: "gone", state: "installer", disks: [{ name: "vda", sizeMiB: 64 }] });
  const loop = host.loopDevices["vda"]!;
  const initPid = host.initPid;
  await host.run("mkfs.ext4 -q /dev/vda && mount /dev/vda /mnt");
  await host.stop();
  const { stdout: loops } = await execa("losetup", ["-a"]);
  assert.ok(!loops.includes(`${loop}:`), `${loop} still attached`);
  assert.ok(!readFileSync("/proc/mounts", "utf8").includes(host.stateDir), "no mount of the host's state left");
  assert.throws(() => process.kill(initPid, 0), "the host's init still runs");
  const { stdout: leftovers } = await execa("pgrep", ["-f", host.stateDir], { reject: false });
  assert.equal(leftovers.trim(), "", "no process of the host (its sshd names its state dir) is left");
  const { stdout: listeners } = await execa("sh", ["-c", `ss -ltn | grep -c '${host.address}:22' || true`]);
  assert.equal(listeners.trim(), "0", "nothing listens on the host's address");
});
