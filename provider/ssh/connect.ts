import { Client, type ConnectConfig } from "ssh2";
import type { Duplex } from "node:stream";
import { NixosPulumiError } from "../errors";
import type { Connection } from "../schema/connection";
import { HostKeyMismatchError, publicKeyLine, sameHostKey } from "./host-key";
import { SshSession } from "./session";

/** How to reach one SSH server (the target or its jump host). */
export type Endpoint = Omit<Connection, "proxy" | "sudo">;

export interface ConnectOptions {
  /** The key recorded in state at first contact, required when connection.hostKey is not set. */
  pinnedHostKey?: string | undefined;
  log?: (line: string) => void;
  retryIntervalMs?: number;
}

const RETRIED = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|Timed out while waiting for handshake|Connection lost before handshake|socket hang up|ended by other party/i;

// AES-GCM first: with AES-NI it is the fastest cipher for copying closures.
const ALGORITHMS: ConnectConfig["algorithms"] = {
  cipher: ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"],
};

/**
 * Opens an authenticated session, retrying while the machine is unreachable (up to
 * dialErrorLimit attempts of perDialTimeout seconds each). Authentication failures and host
 * key mismatches are never retried, and a mismatch aborts before authentication.
 */
export async function connect(connection: Connection, options: ConnectOptions = {}): Promise<SshSession> {
  const expected = connection.hostKey ?? options.pinnedHostKey;
  let jump: Client | undefined;
  if (connection.proxy) {
    const viaProxy = await dialWithRetries(connection.proxy, connection.proxy.hostKey, options);
    jump = viaProxy.client;
  }
  const { client, hostKey } = await dialWithRetries(connection, expected, options, jump);
  return new SshSession(client, hostKey, `${connection.host}:${connection.port}`, connection.user !== "root" && connection.sudo, jump);
}

async function dialWithRetries(
  endpoint: Endpoint,
  expectedHostKey: string | undefined,
  options: ConnectOptions,
  jump?: Client,
): Promise<{ client: Client; hostKey: string }> {
  const where = `${endpoint.host}:${endpoint.port}`;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= endpoint.dialErrorLimit; attempt++) {
    try {
      return await dialOnce(endpoint, expectedHostKey, jump);
    } catch (err) {
      lastError = err as Error;
      if (err instanceof NixosPulumiError || !RETRIED.test(lastError.message)) break;
      if (attempt < endpoint.dialErrorLimit) {
        options.log?.(`connect: ${where} not reachable (${lastError.message}); attempt ${attempt + 1}/${endpoint.dialErrorLimit}`);
        await new Promise((r) => setTimeout(r, options.retryIntervalMs ?? 2000));
      }
    }
  }
  if (lastError instanceof NixosPulumiError) throw lastError;
  const auth = /authentication methods failed/i.test(lastError?.message ?? "");
  throw new NixosPulumiError(`cannot connect as ${endpoint.user}: ${lastError?.message}`, {
    step: "connect",
    host: where,
    hint: auth
      ? "check connection.user and its privateKey / password / agent: the server refused them"
      : `check that the machine is up and SSH listens on ${where} (tried ${endpoint.dialErrorLimit} times; raise connection.dialErrorLimit or perDialTimeout for slow boots)`,
  });
}

function dialOnce(endpoint: Endpoint, expectedHostKey: string | undefined, jump?: Client): Promise<{ client: Client; hostKey: string }> {
  const where = `${endpoint.host}:${endpoint.port}`;
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seen = "";
    let mismatch: HostKeyMismatchError | undefined;
    const config: ConnectConfig = {
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.user,
      readyTimeout: endpoint.perDialTimeout * 1000,
      keepaliveInterval: 5000,
      keepaliveCountMax: 6,
      algorithms: ALGORITHMS,
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
    // ssh2 may emit more than one error for a failed dial; the first one decides.
    client.on("error", (err: Error) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(mismatch ?? err);
    });
    client.once("ready", () => {
      settled = true;
      resolve({ client, hostKey: seen });
    });

    if (!jump) {
      client.connect(config);
      // Without this, Nagle plus delayed ACKs add ~40 ms to every round trip of the protocol.
      client.setNoDelay(true);
      return;
    }
    jump.forwardOut("127.0.0.1", 0, endpoint.host, endpoint.port, (err, stream) => {
      if (err) return reject(new Error(`jump host could not reach ${where}: ${err.message}`));
      client.connect({ ...config, sock: stream as unknown as Duplex });
    });
  });
}
