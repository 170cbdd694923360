// Before the reboot into the installed system, the install releases what the installer holds,
// as nixos-anywhere does: /mnt unmounted, swap off, and every ZFS pool exported, so the new
// system imports its pools on first boot without force (nixpkgs' boot.zfs.forceImportAll is
// false by default). The namespace installer's zpool and swapoff are recording doubles
// (test/fixtures/installer-tools, CONTRACTS.md "installer"): no ZFS here, and swap is the
// machine's own.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { releaseForReboot } from "../../provider/install/reboot";
import { connectionSchema } from "../../provider/schema/connection";
import { connect, type SshSession } from "../../provider/ssh";
import { startHost, type TestHost } from "../harness/hosts";

let installer: TestHost;
let session: SshSession;

before(async () => {
  installer = await startHost({ name: "relinst", state: "installer" });
  session = await connect(connectionSchema.parse({ host: installer.address, privateKey: installer.clientPrivateKey, hostKey: installer.hostPublicKey }));
});
after(async () => {
  session?.close();
  await installer?.stop();
});

const pools = () => installer.run("zpool list -H -o name");
const calls = async (tool: "zpool" | "swapoff") => (await installer.run(`cat /run/${tool}-double/calls 2>/dev/null || true`)).trim().split("\n").filter(Boolean);

test("the release unmounts /mnt, turns swap off and exports every pool", async () => {
  await installer.run("mkdir -p /run/zpool-double && printf 'rpool\\ntank\\n' > /run/zpool-double/imported && mount -t tmpfs tmpfs /mnt && mkdir /mnt/boot && mount -t tmpfs tmpfs /mnt/boot");
  const lines: string[] = [];
  await releaseForReboot(session, (l) => lines.push(l));
  assert.notEqual((await installer.run("findmnt -rn -o FSTYPE -M /mnt | tail -n 1")).trim(), "tmpfs", "/mnt and what is under it unmounted");
  assert.deepEqual(await calls("swapoff"), ["-a"]);
  assert.ok((await calls("zpool")).includes("export -a"), (await calls("zpool")).join("\n"));
  assert.equal((await pools()).trim(), "no pools available");
});

test("a pool that does not export stops the install before the reboot, with zpool's words and what to do", async () => {
  await installer.run("printf 'tank\\n' > /run/zpool-double/imported && printf 'tank\\n' > /run/zpool-double/busy");
  await assert.rejects(releaseForReboot(session, () => {}), (err: Error) => {
    assert.match(err.message, /zpool export -a failed: the installed system would not import its ZFS pools on first boot/);
    assert.match(err.message, /cannot export 'tank': pool is busy/);
    assert.match(err.message, /nothing was rebooted/);
    return true;
  });
  assert.equal((await pools()).trim(), "tank", "still imported");
  assert.equal((await installer.exec("zpool export nosuch")).code, 1, "the double refuses an unknown pool, as zpool does");
  assert.equal((await installer.exec("zpool frobnicate")).code, 2);
});
