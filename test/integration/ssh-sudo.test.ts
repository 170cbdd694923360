// A non-root user whose sudo asks for a password (Debian's %sudo rule, NixOS's default
// security.sudo.wheelNeedsPassword), on a real sshd test host: without connection.sudoPassword
// one clear error before anything runs as root; with it, a whole switch through `sudo -S`,
// the password on no command line, in no file written and in no error. Also: a boot wait
// that meets a refused login or a failing sudo says so instead of waiting for "a new boot".
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { Readable } from "node:stream";
import { randomBytes } from "node:crypto";
import { connect, waitForNewBoot } from "../../provider/ssh";
import { connectionSchema, type ConnectionInput } from "../../provider/schema/connection";
import { nixosHostSchema } from "../../provider/schema/nixos-host";
import { switchHost } from "../../provider/host/operations";
import { startHost, type TestHost } from "../harness/hosts";
import { buildTestSystem } from "../harness/systems";
import { generateKeyPair, type KeyPair } from "../harness/keys";

const password = `sudo-pw-${randomBytes(9).toString("hex")}`;
let host: TestHost;
let key: KeyPair;
let v1: string;
let v2: string;

/** A user with a home in the host's /tmp, the test key authorized; `groups` e.g. "sudo". */
async function addUser(name: string, groups: string): Promise<void> {
  await host.run(
    `useradd -d /tmp/home-${name} -m ${groups ? `-G ${groups}` : ""} -s /bin/sh ${name} && echo '${name}:${password}' | chpasswd && ` +
      `mkdir -p /tmp/home-${name}/.ssh && echo '${key.publicKey}' > /tmp/home-${name}/.ssh/authorized_keys && chown -R ${name} /tmp/home-${name}`,
  );
}

before(async () => {
  [v1, v2] = await Promise.all([buildTestSystem({ label: "sudo-v1" }), buildTestSystem({ label: "sudo-v2" })]);
  key = await generateKeyPair("sudo-user");
  host = await startHost({ name: "sudoer", state: "nixos", system: v1 });
  // Debian's sudoers: "%sudo ALL=(ALL:ALL) ALL", which asks for the user's password.
  await addUser("ops", "sudo");
  await addUser("guest", "");
});
after(async () => {
  await host?.stop();
});

const conn = (extra: Partial<ConnectionInput>) =>
  connectionSchema.parse({ host: host.address, privateKey: key.privateKey, hostKey: host.hostPublicKey, user: "ops", sudo: true, ...extra });

test("a sudo that asks for a password, without connection.sudoPassword: one error naming it, before anything runs as root", async () => {
  const session = await connect(conn({}));
  try {
    await assert.rejects(session.exec("touch /root/touched"), (err: Error) => {
      assert.match(err.message, /sudo asks ops for a password, and connection\.sudoPassword is not set; nothing was changed/);
      assert.match(err.message, /fix: set connection\.sudoPassword .*security\.sudo\.wheelNeedsPassword = false/);
      return true;
    });
    assert.notEqual((await host.exec("test -e /root/touched")).code, 0, "nothing ran as root");
  } finally {
    session.close();
  }
});

test("a wrong connection.sudoPassword is refused by name, and not shown", async () => {
  const wrong = `wrong-${randomBytes(6).toString("hex")}`;
  const session = await connect(conn({ sudoPassword: wrong }));
  try {
    await assert.rejects(session.exec("touch /root/touched"), (err: Error) => {
      assert.match(err.message, /sudo refused connection\.sudoPassword for ops; nothing was changed/);
      assert.ok(!err.message.includes(wrong), err.message);
      return true;
    });
    assert.notEqual((await host.exec("test -e /root/touched")).code, 0);
  } finally {
    session.close();
  }
});

test("a user sudo does not let in: the error says so and names the fix", async () => {
  const session = await connect(conn({ user: "guest", sudoPassword: password }));
  try {
    await assert.rejects(session.exec("true"), /guest cannot run commands as root with sudo[\s\S]*fix: let guest run commands as root/);
  } finally {
    session.close();
  }
});

test("with connection.sudoPassword: commands run as root and get their own stdin, the password on no command line and in no error", async () => {
  const session = await connect(conn({ sudoPassword: password }));
  try {
    assert.equal((await session.execOk("id -un", "t")).trim(), "root");
    // Twice: a credential sudo cached from the first must not leave the password line to the second's stdin.
    for (const round of [1, 2]) {
      await session.execOk("cat > /root/in", "t", { stdin: `payload ${round}\n` });
      assert.equal(await host.run("base64 -w0 /root/in"), Buffer.from(`payload ${round}\n`).toString("base64"), "the file holds exactly the command's stdin");
    }
    await session.execOk("cat > /root/streamed", "t", { stdin: Readable.from([Buffer.from("first "), Buffer.from("second")]) });
    assert.equal(await host.run("base64 -w0 /root/streamed"), Buffer.from("first second").toString("base64"));
    await session.upload("/root/uploaded", "uploaded content");
    assert.equal(await host.run("base64 -w0 /root/uploaded"), Buffer.from("uploaded content").toString("base64"));
    // Several files in one command (the install's extra files and host key): each byte-exact,
    // with its owner and mode (setuid kept: set after the chown), nothing of the staging left.
    const binary = Buffer.from([0, 255, 10, 13, 0, 1, 2]);
    await session.uploadFiles(
      [
        { path: "/root/batch/a", content: "first\n", mode: "0600" },
        { path: "/root/batch/sub/b", content: binary, mode: "4755", owner: 1234, group: 5678 },
        { path: "/root/batch/c", content: "", mode: "0644", owner: 0, group: 0 },
      ],
      "mkdir -p /root/batch && chmod 0711 /root/batch",
    );
    assert.equal(await host.run("base64 -w0 /root/batch/a; echo; base64 -w0 /root/batch/sub/b; echo; wc -c < /root/batch/c"), `${Buffer.from("first\n").toString("base64")}\n${binary.toString("base64")}\n0`);
    assert.equal(await host.run("stat -c '%a %u %g' /root/batch /root/batch/a /root/batch/sub/b /root/batch/c"), "711 0 0\n600 0 0\n4755 1234 5678\n644 0 0");
    assert.equal(await host.run("find /root/batch /run/nixos-pulumi -name '.nixos-pulumi-upload.*' -o -name 'upload.*' | wc -l"), "0");
    // A directory on the way that another account can write is refused, naming it.
    await host.run("mkdir -p /root/open && chmod 0777 /root/open");
    await assert.rejects(
      session.uploadFiles([
        { path: "/root/batch/d", content: "d", mode: "0600" },
        { path: "/root/open/e", content: "e", mode: "0600" },
      ]),
      /refused to write .*\/root\/open is writable by other accounts/,
    );
    assert.equal(await host.run("cat /root/batch/d; test -e /root/open/e || echo ' absent'"), "d absent");
    // A place root cannot write (a read-only filesystem): the error names the file and the step.
    await assert.rejects(session.uploadFiles([{ path: "/proc/sys/np-upload", content: "x", mode: "0600" }]), (err: Error) => {
      assert.match(err.message, /\[.*upload\] writing \/proc\/sys\/np-upload failed \(exit 1\)/);
      assert.match(err.message, /df -h/);
      return true;
    });
    const commandLines = await session.execOk("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '", "t");
    assert.match(commandLines, /sudo -k -S/, "sudo's own command line was read");
    assert.ok(!commandLines.includes(password), "the password is on no command line");
    await assert.rejects(session.execOk("echo some output; exit 3", "t"), (err: Error) => {
      assert.match(err.message, /exited 3/);
      assert.ok(!err.message.includes(password), err.message);
      return true;
    });
  } finally {
    session.close();
  }
});

test("a whole switch (deploy lock, closure copy, activation) as a user whose sudo needs a password", async () => {
  const spec = nixosHostSchema.parse({ connection: conn({ sudoPassword: password }), system: { storePath: v2 } });
  const lines: string[] = [];
  const facts = await switchHost(spec, v2, host.hostPublicKey, (l) => lines.push(l));
  assert.equal(facts.currentSystem, v2, lines.join("\n"));
  assert.equal((await host.run("readlink /run/current-system")).trim(), v2);
  assert.ok(!lines.some((l) => l.includes(password)), "the password is in no progress line");
});

test("a boot wait that meets a refused login ends with that, not with a timeout about the old boot", async () => {
  const stranger = await generateKeyPair("not-authorized");
  const started = Date.now();
  await assert.rejects(
    waitForNewBoot(() => connect(conn({ privateKey: stranger.privateKey, dialErrorLimit: 1 })), "old-boot", {
      timeoutSeconds: 60,
      authRefusedGraceSeconds: 2,
      step: "reboot",
      host: host.address,
      hint: "h",
    }),
    (err: Error) => {
      assert.match(err.message, /the machine is back \(it answers SSH\) but refuses the login/);
      assert.match(err.message, /fix: the booted system must authorize the deployer's key/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 20_000, `ended after ${Date.now() - started} ms, not at the 60 s timeout`);
});

test("a boot wait reads the boot id without sudo: a failing sudo is not taken for the old boot", async () => {
  const session = await waitForNewBoot(() => connect(conn({ user: "guest" })), "old-boot", { timeoutSeconds: 10, step: "reboot", host: host.address, hint: "h" });
  session.close();
});

test("no sudo: doas with a nopass rule runs commands as root (as nixos-anywhere falls back to it); a doas that wants a password is one error naming the rule", async () => {
  await addUser("dops", "");
  await addUser("dpw", "");
  // doas wants its config root-owned and not writable by others; this host's /etc is its own.
  await host.run("printf 'permit nopass dops as root\\npermit dpw as root\\n' > /etc/doas.conf && chmod 0400 /etc/doas.conf");
  // No usable sudo on this machine from here on.
  await host.run('touch /tmp/no-sudo && mount --bind /tmp/no-sudo "$(command -v sudo)"');
  try {
    const session = await connect(conn({ user: "dops" }));
    try {
      assert.equal((await session.execOk("id -u", "t")).trim(), "0");
      await session.upload("/root/doas-upload", "through doas\n");
      assert.equal(await host.run("stat -c %U /root/doas-upload && cat /root/doas-upload"), "root\nthrough doas");
    } finally {
      session.close();
    }
    const refused = await connect(conn({ user: "dpw", sudoPassword: password }));
    try {
      await assert.rejects(refused.exec("touch /root/by-dpw"), (err: Error) => {
        assert.match(err.message, /the machine has no sudo, and doas does not let dpw run commands as root without a password/);
        assert.match(err.message, /fix: doas takes no password from the provider \(connection\.sudoPassword is for sudo\): add a rule "permit nopass dpw as root"/);
        assert.ok(!err.message.includes(password), "the password is in no error");
        return true;
      });
      assert.notEqual((await host.exec("test -e /root/by-dpw")).code, 0, "nothing ran as root");
    } finally {
      refused.close();
    }
  } finally {
    await host.run('umount "$(command -v sudo)"; rm -f /tmp/no-sudo /etc/doas.conf');
  }
});
