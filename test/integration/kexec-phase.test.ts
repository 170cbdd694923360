// The kexec phase's contract with the machine and the tarball, on test hosts with tarballs
// whose kexec/run never calls kexec (the real kexec runs in the QEMU tier): it is skipped
// inside the installer; missing tools stop it before anything changes; a failing
// kexec/run's exit status and log are shown; a machine that never reboots is caught by its
// unchanged boot id; a password user gets a temporary root key the installer would accept.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync } from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { runInstall, type InstallContext } from "../../provider/install";
import { ensureRootKeyLogin } from "../../provider/install/root-access";
import { connect } from "../../provider/ssh";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";

let rescue: TestHost;
let installer: TestHost;
let toplevel: string;
const work = mkdtempSync("/tmp/nixos-pulumi-kexec-test-");

/** A tarball in nixos-anywhere's format whose kexec/run runs `body` instead of kexec. */
async function fakeTarball(name: string, body: string): Promise<string> {
  const dir = path.join(work, name, "kexec");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "run"), `#!/bin/sh\n${body}\n`);
  chmodSync(path.join(dir, "run"), 0o755);
  const tarball = path.join(work, `${name}.tar.gz`);
  await execa("tar", ["-C", path.join(work, name), "-czf", tarball, "kexec"]);
  return tarball;
}

async function context(host: TestHost, install: Record<string, unknown>, lines: string[], connection: Record<string, unknown> = {}): Promise<InstallContext> {
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, ...connection },
    system: { storePath: toplevel },
    install,
  });
  const open = (hostKey?: string, c = spec.connection) => connect({ ...c, hostKey: undefined }, { pinnedHostKey: hostKey ?? host.hostPublicKey });
  return { spec, toplevel, layout: undefined, progress: (l) => lines.push(l), session: await open(), connect: open };
}

before(async () => {
  toplevel = await buildTestSystem({ label: "kexec-phase" });
  [rescue, installer] = await Promise.all([
    startHost({ name: "kxrescue", state: "rescue", rootPassword: "kexec-pw-1" }),
    startHost({ name: "kxinst", state: "installer" }),
  ]);
  await rescue.run("echo 'root:kexec-pw-1' | chpasswd");
});
after(async () => Promise.all([rescue?.stop(), installer?.stop()]));

test("inside the NixOS installer the kexec phase is skipped (no tarball needed)", async () => {
  const lines: string[] = [];
  const ctx = await context(installer, { phases: ["kexec"] }, lines);
  await runInstall(ctx, ["kexec"]);
  ctx.session.close();
  assert.ok(lines.some((l) => /already runs the NixOS installer \(VARIANT_ID=installer\); skipped/.test(l)), lines.join("\n"));
});

test("a failing kexec/run stops the install with its exit status and log; nothing else ran", async () => {
  const tarball = await fakeTarball("fails", 'echo "kexec_load failed: Operation not permitted"; exit 1');
  const lines: string[] = [];
  const ctx = await context(rescue, { phases: ["kexec"], kexecTarball: tarball }, lines);
  await assert.rejects(runInstall(ctx, ["kexec"]), (err: Error) => {
    assert.match(err.message, /kexec\/run failed \(exit 1\); the machine was not changed/);
    assert.match(err.message, /kexec_load failed: Operation not permitted/);
    return true;
  });
  ctx.session.close();
});

test("a kexec/run that exits 0 but never reboots the machine is caught by its unchanged boot id", async () => {
  const tarball = await fakeTarball("never", 'echo "machine will boot into nixos in 6s..."; exit 0');
  const lines: string[] = [];
  const ctx = await context(rescue, { phases: ["kexec"], kexecTarball: tarball, timeouts: { kexecSeconds: 6 } }, lines);
  const started = Date.now();
  await assert.rejects(runInstall(ctx, ["kexec"]), (err: Error) => {
    assert.match(err.message, /did not come back with a new boot within 6s; last contact: the machine still answered from its old boot/);
    return true;
  });
  assert.ok(Date.now() - started < 20_000, "bounded by kexecSeconds");
  assert.ok(lines.some((l) => /machine will boot into nixos/.test(l)), lines.join("\n"));
});

test("the kexec phase refuses a machine without cpio or setsid before changing anything", async () => {
  const tarball = await fakeTarball("unused", "exit 0");
  await rescue.run("rm -rf /root/kexec");
  await rescue.run("mkdir -p /tmp/nocpio && mount --bind /tmp/nocpio /usr/bin/cpio 2>/dev/null || { touch /tmp/nocpio-file; mount --bind /tmp/nocpio-file /usr/bin/cpio; }; chmod 000 /usr/bin/cpio");
  try {
    const lines: string[] = [];
    const ctx = await context(rescue, { phases: ["kexec"], kexecTarball: tarball, timeouts: { kexecSeconds: 5 } }, lines);
    await assert.rejects(runInstall(ctx, ["kexec"]), /lacks cpio, needed by the kexec phase; nothing was changed/);
    ctx.session.close();
    assert.notEqual((await rescue.exec("test -e /root/kexec/kexec/run")).code, 0, "nothing was uploaded");
  } finally {
    await rescue.run("umount /usr/bin/cpio");
  }
});

test("the kexec phase refuses a setsid without --wait (busybox's) before changing anything", async () => {
  const tarball = await fakeTarball("unused", "exit 0");
  await rescue.run("rm -rf /root/kexec");
  await rescue.run(`printf '#!/bin/sh\\nexec busybox setsid "$@"\\n' > /tmp/busybox-setsid && chmod 755 /tmp/busybox-setsid && mount --bind /tmp/busybox-setsid "$(command -v setsid)"`);
  try {
    const ctx = await context(rescue, { phases: ["kexec"], kexecTarball: tarball, timeouts: { kexecSeconds: 5 } }, []);
    await assert.rejects(runInstall(ctx, ["kexec"]), /lacks setsid --wait \(util-linux's setsid; this one has no --wait\), needed by the kexec phase; nothing was changed/);
    ctx.session.close();
    assert.notEqual((await rescue.exec("test -e /root/kexec/kexec/run")).code, 0, "nothing was uploaded");
  } finally {
    await rescue.run('umount "$(command -v setsid)"');
  }
});

test("a user who logs in with a password gets a temporary key that root accepts on port 22, and it can be revoked", async () => {
  const spec = nixosHostSchema.parse({
    connection: { host: rescue.address, password: "kexec-pw-1", hostKey: rescue.hostPublicKey },
    system: { storePath: toplevel },
  });
  const session = await connect(spec.connection);
  const root = await ensureRootKeyLogin(session, spec.connection, () => {});
  assert.equal(root.connection.password, undefined, "no password after kexec: the installer takes keys only");
  assert.equal(root.connection.user, "root");
  assert.equal(root.connection.port, 22);
  const asRoot = await connect({ ...root.connection, hostKey: rescue.hostPublicKey });
  assert.equal((await asRoot.execOk("whoami", "t")).trim(), "root");
  asRoot.close();
  await root.revoke(session);
  assert.doesNotMatch(await rescue.run("cat /root/.ssh/authorized_keys"), /nixos-pulumi-kexec/);
  session.close();
});
