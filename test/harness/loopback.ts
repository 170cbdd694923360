import * as net from "node:net";

export interface LoopbackServer {
  port: number;
  /** Every connection accepted so far. */
  sockets: net.Socket[];
  /** Destroys every accepted connection and stops listening. */
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 (a free port) that does `onConnection` with each connection: the faults a dial meets. */
export async function loopbackServer(onConnection: (socket: net.Socket) => void = () => undefined): Promise<LoopbackServer> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = await loopbackServer();
  await server.close();
  return server.port;
}
