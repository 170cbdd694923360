// A TCP proxy in front of a test host, on its own loopback address, for fault injection:
// count connections, stall (hold bytes, keep the sockets), slow down (latency and/or a
// byte rate), or cut every open connection. Bytes keep their order in every mode.
import * as net from "node:net";
import { randomInt } from "node:crypto";

export interface TcpProxy {
  address: string;
  port: number;
  /** Connections accepted since start (a test asserts "no SSH connection was opened"). */
  connectionCount(): number;
  /** Connections currently open. */
  openConnections(): number;
  /** Stop forwarding bytes in both directions (sockets stay open) until resume(). */
  stall(): void;
  resume(): void;
  /** Delay every chunk by this many milliseconds (0 = off). */
  setLatency(ms: number): void;
  /** Limit each direction of each connection to this many bytes per second (0 = off). */
  setRate(bytesPerSecond: number): void;
  /** Destroy every open connection (new ones are still accepted). */
  cut(): void;
  close(): Promise<void>;
}

export interface ProxyOptions {
  target: { host: string; port: number };
  /** Listen address (default: a random free 127.x.y.z) and port (default: any free one). */
  address?: string;
  port?: number;
}

interface Shaping {
  stalled: boolean;
  latencyMs: number;
  rate: number;
}

const SLICE = 16 * 1024;
const HIGH_WATER = 1024 * 1024;

/** One direction of a connection: a queue of chunks released by the current shaping. */
class Pipe {
  private queue: { chunk: Buffer; due: number }[] = [];
  private queued = 0;
  private busy = false;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly shaping: Shaping,
  ) {
    from.on("data", (chunk: Buffer) => {
      this.queue.push({ chunk, due: Date.now() + shaping.latencyMs });
      this.queued += chunk.length;
      if (this.queued > HIGH_WATER) from.pause();
      this.pump();
    });
    from.on("end", () => {
      this.queue.push({ chunk: Buffer.alloc(0), due: Date.now() + shaping.latencyMs });
      this.pump();
    });
  }

  /** Sends what may be sent now; re-arms itself for later chunks. */
  pump(): void {
    if (this.busy || this.shaping.stalled || this.to.destroyed) return;
    const head = this.queue[0];
    if (!head) return;
    const wait = head.due - Date.now();
    if (wait > 0) return this.later(wait);
    if (head.chunk.length === 0) {
      this.queue.shift();
      this.to.end();
      return;
    }
    const piece = this.shaping.rate > 0 ? head.chunk.subarray(0, SLICE) : head.chunk;
    if (piece.length === head.chunk.length) this.queue.shift();
    else head.chunk = head.chunk.subarray(piece.length);
    this.queued -= piece.length;
    this.to.write(piece);
    if (this.queued <= HIGH_WATER && this.from.isPaused()) this.from.resume();
    if (this.shaping.rate > 0) return this.later((piece.length / this.shaping.rate) * 1000);
    this.pump();
  }

  private later(ms: number): void {
    this.busy = true;
    setTimeout(() => {
      this.busy = false;
      this.pump();
    }, ms).unref();
  }
}

export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const { target } = options;
  let count = 0;
  const shaping: Shaping = { stalled: false, latencyMs: 0, rate: 0 };
  const sockets = new Set<net.Socket>();
  const pipes = new Set<Pipe>();

  const server = net.createServer((client) => {
    count++;
    const upstream = net.connect(target.port, target.host);
    const both = [new Pipe(client, upstream, shaping), new Pipe(upstream, client, shaping)];
    for (const pipe of both) pipes.add(pipe);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
        for (const pipe of both) pipes.delete(pipe);
      });
    }
  });
  const address = options.address ?? `127.${randomInt(64, 250)}.${randomInt(1, 250)}.${randomInt(1, 250)}`;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, address, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const pumpAll = () => pipes.forEach((p) => p.pump());
  return {
    address,
    port,
    connectionCount: () => count,
    openConnections: () => Math.ceil(sockets.size / 2),
    stall: () => {
      shaping.stalled = true;
    },
    resume: () => {
      shaping.stalled = false;
      pumpAll();
    },
    setLatency: (ms) => {
      shaping.latencyMs = Math.max(0, ms);
    },
    setRate: (bytesPerSecond) => {
      shaping.rate = Math.max(0, bytesPerSecond);
      pumpAll();
    },
    cut: () => sockets.forEach((s) => s.destroy()),
    close: () =>
      new Promise<void>((resolve) => {
        sockets.forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  };
}
