// A target shared with another local account (a rescue system's second user): with
// fs.protected_regular=0 and fs.protected_symlinks=0 that account pre-creates every name it
// could guess (the old fixed /tmp names, their .tmp siblings, symlinks at the key path) and,
// during the install, races a loop that reads every file it can and rewrites every script it
// can. The provider's scripts must run unmodified, the disk key must stay unread, the install
// must succeed, and a key path under a directory that account owns must be refused clearly.
// A switch on the same machine works from its own root-only run directory the same way.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { renderLayout, resolveLayout } from "../../provider/disk";
import { runInstall, type InstallContext } from "../../provider/install";
import { connect, shellQuote } from "../../provider/ssh";
import { copyClosure } from "../../provider/copy";
import { activate } from "../../provider/switch";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { tutorialLayout } from "../fixtures/layouts";

const SYSCTLS = ["/proc/sys/fs/protected_regular", "/proc/sys/fs/protected_symlinks"];
const ATTACKER_UID = 4242;
const LOOT = "/tmp/.mallory";
const PWNED = "/tmp/.mallory-pwned";
const STOP = "/tmp/.mallory-stop";

let host: TestHost;
let nixos: TestHost;
let toplevel: string;
const previous = new Map<string, string>();

before(async () => {
  // Machine-wide: set for this file only, restored in after() even when a test fails.
  for (const file of SYSCTLS) {
    previous.set(file, readFileSync(file, "utf8").trim());
    writeFileSync(file, "0");
  }
  toplevel = await buildTestSystem({ label: "shared-target" });
  [host, nixos] = await Promise.all([
    startHost({ name: "shared", state: "installer", disks: [{ name: "vda", sizeMiB: 1024 }] }),
    startHost({ name: "sharedos", state: "nixos", system: toplevel }),
  ]);
  // The account lives in each host's /etc overlay only.
  for (const h of [host, nixos]) await h.run(`useradd -u ${ATTACKER_UID} -M -N -d /tmp -s /bin/sh mallory`);
});

after(async () => {
  try {
    await host?.run(`touch ${STOP}; umount -R /mnt 2>/dev/null; true`).catch(() => undefined);
    await nixos?.run(`touch ${STOP}`).catch(() => undefined);
    await Promise.all([host?.stop(), nixos?.stop()]);
  } finally {
    for (const [file, value] of previous) writeFileSync(file, value);
  }
});

const asMallory = (script: string) => `runuser -u mallory -- sh -c ${shellQuote(script)}`;


/** Everything the account can guess, made before the install starts. */
const PLANT = `
set -u
mkdir -p ${LOOT} && chmod 700 ${LOOT}
cat > ${LOOT}/payload <<'EOF'
#!/bin/sh
echo "the planted script ran as uid $(id -u)" > ${PWNED}; chmod 666 ${PWNED}; exit 0
EOF
for n in disko mount release; do
  for f in /tmp/nixos-pulumi-$n.sh /tmp/nixos-pulumi-$n.sh.tmp; do cp ${LOOT}/payload $f; chmod 777 $f; done
done
: > /tmp/disk.key.tmp; chmod 666 /tmp/disk.key.tmp
: > ${LOOT}/planted-key; chmod 666 ${LOOT}/planted-key
ln -s ${LOOT}/planted-key /tmp/disk.key
ln -s ${LOOT}/planted-key /tmp/disk.key.tmp.tmp
for d in /run/nixos-pulumi /root/kexec /mnt/tmp /tmp/nixos-pulumi; do mkdir -p $d 2>/dev/null; done
true
`;

/** Reads whatever it can, makes its own files readable again, rewrites every script it can write. */
const RACE = `
while [ ! -e ${STOP} ]; do
  find /tmp /run /mnt/tmp /mnt/etc -maxdepth 4 \\( -type f -o -type l \\) 2>/dev/null | while IFS= read -r f; do
    case "$f" in ${LOOT}/*|${PWNED}) continue ;; esac
    [ -O "$f" ] && chmod 666 "$f" 2>/dev/null
    [ -f "$f" ] && [ -r "$f" ] && { echo "== $f"; cat "$f"; } >> ${LOOT}/read 2>/dev/null
    case "$f" in *.sh|*.sh.tmp) [ -w "$f" ] && cat ${LOOT}/payload > "$f" 2>/dev/null ;; esac
  done
  cat ${LOOT}/planted-key >> ${LOOT}/read 2>/dev/null
  sleep 0.01
done
`;

async function context(toplevel: string, diskKeys: Record<string, string>, lines: string[]): Promise<InstallContext> {
  const declared = tutorialLayout("/dev/vda", "ext4", "ext4");
  const spec = nixosHostSchema.parse({
    connection: { host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey },
    system: { storePath: toplevel },
    diskLayout: { declared },
    install: { diskKeys },
  });
  const open = () => connect(spec.connection);
  return {
    spec,
    toplevel,
    layout: renderLayout(await resolveLayout(declared)),
    progress: (l) => lines.push(l),
    session: await open(),
    connect: open,
  };
}

test("another local account can neither swap the install's scripts nor read its disk key; the install succeeds", async () => {
  const key = `luks-key-${randomBytes(12).toString("hex")}`;
  await host.run(asMallory(PLANT));
  // A run directory an earlier, killed install left behind: the next run removes it.
  await host.run("mkdir -p -m 700 /run/nixos-pulumi/install.leftover && echo old > /run/nixos-pulumi/install.leftover/disko.sh");
  await host.run(`rm -f ${STOP}; setsid ${asMallory(RACE)} </dev/null >/dev/null 2>&1 &`);
  const lines: string[] = [];
  const ctx = await context(toplevel, { "/tmp/disk.key": key }, lines);
  try {
    await runInstall(ctx, ["disko", "install"]);
  } finally {
    ctx.session.close();
    await host.run(`touch ${STOP}; sleep 0.3`);
  }
  assert.notEqual((await host.exec(`test -e ${PWNED}`)).code, 0, `the account's script ran as root: ${await host.exec(`cat ${PWNED}`).then((r) => r.stdout)}`);
  const loot = await host.run(`cat ${LOOT}/read 2>/dev/null; true`);
  assert.ok(loot.length > 0, "the race loop ran and read something");
  assert.ok(!loot.includes(key), "the account read the disk key");
  assert.equal(await host.run("stat -c '%u %a' /tmp/disk.key"), "0 600", "the key is root's own file, not the account's symlink");
  assert.equal(await host.run("cat /tmp/disk.key"), key);
  assert.equal(await host.run(`cat ${LOOT}/planted-key`), "", "nothing was written through the planted symlink");
  assert.equal((await host.run("readlink -f /mnt/nix/var/nix/profiles/system")).trim(), toplevel);
  assert.equal((await host.run("findmnt -no FSTYPE /mnt | tail -n 1")).trim(), "ext4");
  // Cleaned up: no run directory (this run's or the leftover), no staging directory.
  assert.equal(await host.run("ls -A /run/nixos-pulumi | grep '^install\\.' ; true"), "");
  assert.equal(await host.run("ls -A /tmp /mnt/etc/ssh 2>/dev/null | grep nixos-pulumi-upload ; true"), "");
  assert.equal(await host.run("stat -c '%u %a' /run/nixos-pulumi"), "0 700");
  await host.run("umount -R /mnt");
});

test("a disk key under a directory another account owns is refused before anything is written", async () => {
  const key = `luks-key-${randomBytes(12).toString("hex")}`;
  await host.run(asMallory("mkdir -p /tmp/mallory && chmod 777 /tmp/mallory"));
  const tableBefore = await host.run("sgdisk -p /dev/vda 2>&1; true");
  const ctx = await context(toplevel, { "/tmp/mallory/disk.key": key }, []);
  try {
    await assert.rejects(runInstall(ctx, ["disko"]), (err: Error) => {
      assert.match(err.message, /refused to write install\.diskKeys\["\/tmp\/mallory\/disk\.key"\] \(\/tmp\/mallory\/disk\.key\): \/tmp\/mallory is owned by uid 4242, not root/);
      assert.match(err.message, /fix: write it under a directory only root can change/);
      assert.ok(!err.message.includes(key), "the key is not in the error");
      return true;
    });
  } finally {
    ctx.session.close();
  }
  assert.notEqual((await host.exec("test -e /tmp/mallory/disk.key")).code, 0, "nothing was written there");
  assert.equal(await host.run("ls -A /tmp/mallory"), "");
  assert.equal(await host.run("sgdisk -p /dev/vda 2>&1; true"), tableBefore, "the disk was not touched");
});

test("a switch activates from its own root-only run directory; a finished or never started run's leftover goes; a /run/nixos-pulumi another account owns is refused", async () => {
  const spec = nixosHostSchema.parse({ connection: { host: nixos.address, privateKey: nixos.clientPrivateKey, hostKey: nixos.hostPublicKey }, system: { storePath: toplevel } });
  const open = () => connect(spec.connection);
  // Left by earlier switches: one whose activation finished (done), one still running (its
  // script, no done), one whose deployer went away before starting it (no script).
  await nixos.run(
    "mkdir -p -m 700 /run/nixos-pulumi && mkdir -m 700 /run/nixos-pulumi/switch.1-finished /run/nixos-pulumi/switch.2-running /run/nixos-pulumi/switch.3-notstarted && " +
      "touch /run/nixos-pulumi/switch.1-finished/activate.sh /run/nixos-pulumi/switch.1-finished/done /run/nixos-pulumi/switch.2-running/activate.sh /run/nixos-pulumi/switch.3-notstarted/toplevel",
  );
  await nixos.run(`rm -f ${STOP}; setsid ${asMallory(RACE)} </dev/null >/dev/null 2>&1 &`);
  let session = await open();
  try {
    await copyClosure(session, toplevel);
    const activated = await activate(session, { toplevel, action: "switch", rollback: "none", timeoutSeconds: 60, reconnect: open });
    session = activated.session;
    await activated.runDirRemoved;
    assert.equal((await nixos.run("readlink /run/current-system")).trim(), toplevel);
    assert.equal(await nixos.run("ls -A /run/nixos-pulumi | grep '^switch\\.' ; true"), "switch.2-running");

    await nixos.run(`chown ${ATTACKER_UID} /run/nixos-pulumi`);
    await assert.rejects(activate(session, { toplevel, action: "switch", rollback: "none", timeoutSeconds: 60, reconnect: open }), (err: Error) => {
      assert.match(err.message, /could not start the activation \(exit 77\)/);
      assert.match(err.message, /\/run\/nixos-pulumi is owned by uid 4242, not root/);
      return true;
    });
  } finally {
    session.close();
    await nixos.run(`chown 0 /run/nixos-pulumi; touch ${STOP}; sleep 0.3`);
  }
  assert.notEqual((await nixos.exec(`test -e ${PWNED}`)).code, 0, "the account's script ran as root");
  assert.equal(await nixos.run("ls -A /run/nixos-pulumi | grep '^switch\\.' ; true"), "switch.2-running", "nothing was made in a directory the account owned");
});
