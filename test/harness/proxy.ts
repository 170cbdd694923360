// A TCP proxy in front of a test host, on its own loopback address, for fault injection:
// count connections, stall (hold bytes), slow down, or cut every open connection.
import * as net from "node:net";
import { randomInt } from "node:crypto";

export interface TcpProxy {
  address: string;
  port: number;
  connectionCount(): number;
  /** Stop forwarding bytes (connections stay open) until resume(). */
  stall(): void;
  resume(): void;
  /** Delay every chunk by this many milliseconds (0 = off). */
  setLatency(ms: number): void;
  /** Destroy every open connection (new ones are still accepted). */
  cut(): void;
  close(): Promise<void>;
}

export async function startProxy({ target }: { target: { host: string; port: number } }): Promise<TcpProxy> {
  let count = 0;
  let stalled = false;
  let latency = 0;
  const sockets = new Set<net.Socket>();
  const paused: (() => void)[] = [];

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on("data", (chunk) => {
      const send = () => {
        if (latency > 0) setTimeout(() => to.write(chunk), latency);
        else to.write(chunk);
      };
      if (stalled) {
        from.pause();
        paused.push(() => {
          send();
          from.resume();
        });
      } else send();
    });
    from.on("end", () => to.end());
    from.on("error", () => to.destroy());
    from.on("close", () => to.destroy());
  };

  const server = net.createServer((client) => {
    count++;
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  const address = `127.${randomInt(64, 250)}.${randomInt(1, 250)}.${randomInt(1, 250)}`;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    address,
    port,
    connectionCount: () => count,
    stall: () => (stalled = true),
    resume: () => {
      stalled = false;
      paused.splice(0).forEach((go) => go());
    },
    setLatency: (ms) => (latency = ms),
    cut: () => sockets.forEach((s) => s.destroy()),
    close: () =>
      new Promise<void>((resolve) => {
        sockets.forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  };
}
