// provider/ssh against real sshd test hosts: authentication methods, pinned host keys,
// a jump host, sudo for a non-root user, and dialing a host that comes up late.
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { connect, fingerprint } from "../../provider/ssh";
import { ConnectFailedError } from "../../provider/errors";
import { classifyDialError } from "../../provider/ssh/dial-failure";
import { connectionSchema, type ConnectionInput } from "../../provider/schema/connection";
import { startHost, type TestHost } from "../harness/hosts";
import { generateKeyPair } from "../harness/keys";
import { startProxy } from "../harness/proxy";

let target: TestHost;
let bastion: TestHost;
before(async () => {
  target = await startHost({ name: "target", state: "installer", rootPassword: "root-pw-123" });
  bastion = await startHost({ name: "bastion", state: "rescue" });
  await target.run("echo 'root:root-pw-123' | chpasswd");
});
after(async () => {
  await target?.stop();
  await bastion?.stop();
});

const conn = (host: TestHost, extra: Partial<ConnectionInput> = {}) =>
  connectionSchema.parse({ host: host.address, privateKey: host.clientPrivateKey, hostKey: host.hostPublicKey, ...extra });

test("key with a passphrase", async () => {
  const key = await generateKeyPair("passphrase-test", "s3cret phrase");
  await target.run(`echo '${key.publicKey}' >> /root/.ssh/authorized_keys`);
  const session = await connect(conn(target, { privateKey: key.privateKey, privateKeyPassword: "s3cret phrase" }));
  assert.equal((await session.execOk("hostname", "t")).trim(), "target");
  session.close();
});

test("SSH agent authentication", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "agent-"));
  const socket = path.join(dir, "agent.sock");
  const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
  try {
    for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
    await execa("ssh-add", ["-q", target.clientPrivateKeyPath], { env: { SSH_AUTH_SOCK: socket } });
    const session = await connect(conn(target, { privateKey: undefined, agentSocketPath: socket }));
    assert.equal((await session.execOk("hostname", "t")).trim(), "target");
    session.close();
  } finally {
    agent.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("password authentication", async () => {
  const session = await connect(conn(target, { privateKey: undefined, password: "root-pw-123" }));
  assert.equal((await session.execOk("whoami", "t")).trim(), "root");
  session.close();
  await assert.rejects(connect(conn(target, { privateKey: undefined, password: "wrong", dialErrorLimit: 5 })), (err: Error) => {
    assert.match(err.message, /authentication methods failed/);
    assert.match(err.message, /privateKey \/ password/);
    assert.ok(!err.message.includes("wrong"), "the password is not in the error");
    // Decided from ssh2's level on sshd's refusal, and not dialled again.
    assert.ok(err instanceof ConnectFailedError);
    assert.equal(err.failure, "login-refused");
    assert.equal((err.cause as Error & { level?: string }).level, "client-authentication");
    assert.equal(classifyDialError(err.cause), "login-refused");
    assert.match(err.message, /\(1 attempt in/);
    return true;
  });
});

test("a host key mismatch stops before any command runs, showing both fingerprints", async () => {
  const marker = `/tmp/mismatch-${Date.now()}`;
  await assert.rejects(
    (async () => {
      const s = await connect(conn(target, { hostKey: bastion.hostPublicKey }));
      await s.execOk(`touch ${marker}`, "t");
    })(),
    (err: Error) => {
      assert.match(err.message, /host key mismatch/);
      assert.ok(err.message.includes(fingerprint(bastion.hostPublicKey)));
      assert.ok(err.message.includes(fingerprint(target.hostPublicKey)));
      return true;
    },
  );
  assert.notEqual((await target.exec(`test -e ${marker}`)).code, 0, "no command ran on the target");
});

test("the key seen at first contact is recorded, and required later", async () => {
  const first = await connect(conn(target, { hostKey: undefined }));
  assert.equal(first.hostKey, target.hostPublicKey);
  first.close();
  await assert.rejects(connect(conn(target, { hostKey: undefined }), { pinnedHostKey: bastion.hostPublicKey }), /host key mismatch/);
});

test("through a jump host", async () => {
  const session = await connect(
    conn(target, { proxy: { host: bastion.address, privateKey: bastion.clientPrivateKey, hostKey: bastion.hostPublicKey } }),
  );
  assert.equal((await session.execOk("hostname", "t")).trim(), "target");
  session.close();
  await assert.rejects(
    connect(conn(target, { proxy: { host: bastion.address, privateKey: bastion.clientPrivateKey, hostKey: target.hostPublicKey } })),
    /host key mismatch/,
  );
});

test("sudo for a non-root user", async () => {
  const key = await generateKeyPair("deploy-user");
  await target.run(
    // The home lives in the host's own /tmp; '*' unlocks the account for key logins without PAM.
    "useradd -d /tmp/home-deploy -m -p '*' deploy && mkdir -p /tmp/home-deploy/.ssh && " +
      `echo '${key.publicKey}' > /tmp/home-deploy/.ssh/authorized_keys && chown -R deploy /tmp/home-deploy && ` +
      "mkdir -p /etc/sudoers.d && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy",
  );
  const session = await connect(conn(target, { user: "deploy", privateKey: key.privateKey, sudo: true }));
  assert.equal((await session.execOk("id -un", "t")).trim(), "root");
  assert.equal((await session.execOk("id -un", "t", { privileged: false })).trim(), "deploy");
  session.close();
});

test("dial retries until a late host answers", async () => {
  const proxy = await startProxy({ target: { host: target.address, port: target.port } });
  try {
    proxy.stall();
    setTimeout(() => proxy.resume(), 2500);
    const lines: string[] = [];
    const session = await connect(conn(target, { host: proxy.address, port: proxy.port, perDialTimeout: 1, dialErrorLimit: 10 }), {
      log: (l) => lines.push(l),
      retryIntervalMs: 200,
      deadlineSeconds: 10,
    });
    assert.equal((await session.execOk("hostname", "t")).trim(), "target");
    session.close();
    // With a caller's deadline the deadline alone limits the retries (dialErrorLimit does not).
    assert.ok(lines.some((l) => /not reachable \(.*\); retrying until 10 s have passed/.test(l)), lines.join("\n"));
  } finally {
    await proxy.close();
  }
});

test("a pinned RSA host key is accepted from a server that also has an ed25519 key", async () => {
  const both = await startHost({ name: "rsahost", state: "rescue", rsaHostKey: true });
  try {
    const session = await connect(conn(both, { hostKey: both.rsaHostPublicKey! }));
    assert.equal(session.hostKey, both.rsaHostPublicKey, "the server presented its RSA key, as pinned");
    session.close();
    const ed = await connect(conn(both, { hostKey: both.hostPublicKey }));
    assert.equal(ed.hostKey, both.hostPublicKey);
    ed.close();
  } finally {
    await both.stop();
  }
});
