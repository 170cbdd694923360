import { Client, type ConnectConfig } from "ssh2";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { ConnectFailedError, type DialFailure } from "../errors";
import type { Connection } from "../schema/connection";
import { HostKeyMismatchError, hostKeyAlgorithmsFor, publicKeyLine, sameHostKey } from "./host-key";
import { SshSession } from "./session";
import { classifyDialError, ClosedBeforeHandshake, JumpForwardRefused } from "./dial-failure";

/** How to reach one SSH server (the target or its jump host). */
export type Endpoint = Omit<Connection, "proxy" | "sudo">;

export interface ConnectOptions {
  /** The key recorded in state at first contact, required when connection.hostKey is not set. */
  pinnedHostKey?: string | undefined;
  log?: (line: string) => void;
  retryIntervalMs?: number;
  /**
   * Total time for all dial attempts to one server; by default connection.perDialTimeout.
   * Given by callers that expect the machine to come back (reading a verdict after an
   * activation restarted sshd): then a refused port is retried until this deadline too.
   */
  deadlineSeconds?: number;
  /**
   * Both ends are known to have AES instructions (a copy's own connection, dialled after the
   * target said so): offer AES-GCM first, which costs both ends less CPU than chacha20 there.
   */
  preferAes?: boolean;
}

/** A closed port does not open by waiting: without a deadline from the caller, give up after this many refusals. */
export const REFUSED_ATTEMPTS = 3;

// OpenSSH's order, chacha20-poly1305 first: the client's first choice wins before we can
// see the target's CPU, and AES-GCM on a target without AES instructions (QEMU guests, some
// cloud vCPUs) halves the copy rate, while chacha20 costs little where AES is fast
// (bench/copy-cipher.ts). AES-GCM before CTR for servers without chacha20 (FIPS).
const ALGORITHMS: ConnectConfig["algorithms"] = {
  cipher: ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"],
};
const AES_FIRST_ALGORITHMS: ConnectConfig["algorithms"] = {
  cipher: ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"],
};

// ssh2's chacha20-poly1305 corrupts a connection carried inside another one (a target
// behind a jump host: the handshake fails with "Invalid ssh2 packet type" or hangs; seen
// with ssh2 1.17, also reported by Termix #1080): the inner connection uses AES only.
const THROUGH_JUMP_ALGORITHMS: ConnectConfig["algorithms"] = {
  cipher: ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"],
};

/**
 * Opens an authenticated session, retrying while the machine is unreachable: at most
 * dialErrorLimit attempts within perDialTimeout seconds in all, a refused port at most
 * REFUSED_ATTEMPTS times; or, when the caller gives a deadline, as often as fits in it. Authentication failures
 * and host key mismatches are never retried, and a mismatch aborts before authentication.
 */
export async function connect(connection: Connection, options: ConnectOptions = {}): Promise<SshSession> {
  const expected = connection.hostKey ?? options.pinnedHostKey;
  let jump: Client | undefined;
  if (connection.proxy) {
    const viaProxy = await dialWithRetries(connection.proxy, connection.proxy.hostKey, options).catch((err: unknown) => {
      throw asJumpHostError(err);
    });
    jump = viaProxy.client;
  }
  try {
    const { client, hostKey, cipher } = await dialWithRetries(connection, expected, options, jump);
    const session = new SshSession(client, hostKey, `${connection.host}:${connection.port}`, connection.user !== "root" && connection.sudo, jump, connection);
    session.cipher = cipher;
    return session;
  } catch (err) {
    // A failed dial through the jump host must not leave the jump connection open.
    jump?.end();
    throw err;
  }
}

/** A failure of the jump host's own dial says so, and points at connection.proxy. */
function asJumpHostError(err: unknown): unknown {
  if (!(err instanceof ConnectFailedError)) return err;
  const { hint, host, output } = err.details;
  return new ConnectFailedError(
    `jump host (connection.proxy): ${err.summary}`,
    {
      step: "connect",
      ...(host ? { host } : {}),
      ...(output ? { output } : {}),
      ...(hint ? { hint: hint.replace(/connection\./g, "connection.proxy.") } : {}),
    },
    err.failure,
    err.cause,
  );
}

async function dialWithRetries(
  endpoint: Endpoint,
  expectedHostKey: string | undefined,
  options: ConnectOptions,
  jump?: Client,
): Promise<Dialled> {
  const where = `${endpoint.host}:${endpoint.port}`;
  const started = Date.now();
  const budgetSeconds = options.deadlineSeconds ?? endpoint.perDialTimeout;
  const deadline = started + budgetSeconds * 1000;
  // A caller's deadline (a machine expected back, e.g. sshd restarted by an activation) is
  // the only limit: dialErrorLimit half-second attempts would give up after ~5 s.
  const limit = options.deadlineSeconds === undefined ? endpoint.dialErrorLimit : Infinity;
  let lastError: Error | undefined;
  let failure: DialFailure = "final";
  let attempts = 0;
  let refusals = 0;
  let reported = 0;
  while (attempts < limit && Date.now() < deadline) {
    attempts++;
    try {
      return await dialOnce(endpoint, expectedHostKey, jump, Math.min(endpoint.perDialTimeout * 1000, deadline - Date.now()), options.preferAes === true);
    } catch (err) {
      lastError = err as Error;
      failure = classifyDialError(err);
      if (failure === "final" || failure === "login-refused") break;
      if (failure === "refused" && ++refusals >= REFUSED_ATTEMPTS && options.deadlineSeconds === undefined) break;
      const pause = Math.min(options.retryIntervalMs ?? 500, deadline - Date.now());
      if (attempts >= limit || pause <= 0) break;
      if (limit !== Infinity) options.log?.(`connect: ${where} not reachable (${lastError.message}); attempt ${attempts + 1}/${limit}`);
      else if (Date.now() - reported >= 15_000) {
        reported = Date.now();
        options.log?.(`connect: ${where} not reachable (${lastError.message}); retrying until ${budgetSeconds} s have passed (${Math.round((Date.now() - started) / 1000)} s so far)`);
      }
      await new Promise((r) => setTimeout(r, pause));
    }
  }
  if (lastError instanceof HostKeyMismatchError) throw lastError;
  const message = lastError?.message ?? "no attempt fitted in the deadline";
  const tried = `${attempts} attempt${attempts === 1 ? "" : "s"} in ${((Date.now() - started) / 1000).toFixed(1)} s; deadline ${budgetSeconds} s`;
  const silent = failure === "silent";
  throw new ConnectFailedError(
    silent
      ? `cannot connect as ${endpoint.user}: ${where} accepted TCP but sent no SSH greeting within ${Math.round(Math.min(endpoint.perDialTimeout, budgetSeconds))} s (${tried})`
      : `cannot connect as ${endpoint.user}: ${message} (${tried})`,
    {
      step: "connect",
      host: where,
      hint:
        failure === "login-refused"
          ? "check connection.user and its privateKey / password / agent: the server refused them"
          : silent
            ? `check that ${where} is an SSH server (not another service or a stuck sshd); raise connection.perDialTimeout (${endpoint.perDialTimeout} s) for very slow links`
            : failure === "refused"
              ? `nothing accepts connections on ${where}: check connection.host and connection.port, and that sshd runs there`
              : `check that the machine is up and SSH listens on ${where}; raise connection.perDialTimeout (the total dial deadline, ${endpoint.perDialTimeout} s) or dialErrorLimit (${endpoint.dialErrorLimit}) for flaky links`,
    },
    failure,
    lastError,
  );
}

interface Dialled {
  client: Client;
  hostKey: string;
  /** The cipher negotiated from client to server. */
  cipher: string;
}

function dialOnce(endpoint: Endpoint, expectedHostKey: string | undefined, jump: Client | undefined, readyTimeoutMs: number, preferAes: boolean): Promise<Dialled> {
  const where = `${endpoint.host}:${endpoint.port}`;
  const algorithms = preferAes ? AES_FIRST_ALGORITHMS : ALGORITHMS;
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seen = "";
    let cipher = "";
    client.once("handshake", (negotiated) => (cipher = negotiated.cs.cipher));
    let mismatch: HostKeyMismatchError | undefined;
    const config: ConnectConfig = {
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.user,
      readyTimeout: Math.max(1, Math.round(readyTimeoutMs)),
      keepaliveInterval: 5000,
      keepaliveCountMax: 6,
      algorithms: expectedHostKey ? { ...algorithms, serverHostKey: hostKeyAlgorithmsFor(expectedHostKey) as never } : algorithms,
      hostVerifier: (key: Buffer) => {
        seen = publicKeyLine(key);
        if (expectedHostKey && !sameHostKey(expectedHostKey, seen)) {
          mismatch = new HostKeyMismatchError(where, expectedHostKey, seen);
          return false;
        }
        return true;
      },
    };
    if (endpoint.privateKey) config.privateKey = endpoint.privateKey;
    if (endpoint.privateKeyPassword) config.passphrase = endpoint.privateKeyPassword;
    if (endpoint.password) config.password = endpoint.password;
    const agent = endpoint.agentSocketPath ?? (!endpoint.privateKey && !endpoint.password ? process.env["SSH_AUTH_SOCK"] : undefined);
    if (agent) config.agent = agent;

    let settled = false;
    // Set by our own listeners on the connection, which run before ssh2's: when ssh2 then
    // reports "Connection lost before handshake" (level "protocol", like a malformed packet),
    // this tells that the server closed the connection.
    let serverClosed = false;
    // ssh2 may emit more than one error for a failed dial; the first one decides.
    client.on("error", (err: Error & { level?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(mismatch ?? (serverClosed && err.level === "protocol" ? new ClosedBeforeHandshake(err.message, err) : err));
    });
    client.once("ready", () => {
      settled = true;
      resolve({ client, hostKey: seen, cipher });
    });
    // A server that sends its banner and then closes (an sshd going down for a reboot)
    // makes ssh2 emit only "close", no "error": without this the dial would never settle.
    client.once("close", () => {
      if (settled) return;
      settled = true;
      reject(mismatch ?? new ClosedBeforeHandshake(`Connection lost before handshake: ${where} closed the connection`));
    });
    const watch = (connection: Duplex) => {
      const closed = () => (serverClosed = !settled);
      connection.once("end", closed).once("close", closed);
      return connection;
    };

    if (!jump) {
      const socket = watch(coalesceWrites(net.connect({ host: endpoint.host, port: endpoint.port })));
      client.connect({ ...config, sock: socket });
      // Without this, Nagle plus delayed ACKs add ~40 ms to every round trip of the protocol.
      client.setNoDelay(true);
      return;
    }
    jump.forwardOut("127.0.0.1", 0, endpoint.host, endpoint.port, (err, stream) => {
      if (err) return reject(new JumpForwardRefused(`jump host could not reach ${where}: ${err.message}`, err));
      client.connect({ ...config, algorithms: THROUGH_JUMP_ALGORITHMS, sock: watch(stream as unknown as Duplex) });
    });
  });
}

/**
 * ssh2 writes every packet to the socket on its own; the packets one write into a channel
 * makes (a 64 KiB pipe read is two 32 KiB packets) go out together, in one writev.
 */
function coalesceWrites(socket: net.Socket): net.Socket {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write(...args);
  }) as typeof socket.write;
  return socket;
}
