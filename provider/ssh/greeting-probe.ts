import * as net from "node:net";

/**
 * Whether `host:port` sends an SSH identification line ("SSH-…") within `timeoutMs`, on one
 * TCP connection that is closed right after. A machine that is still booting either refuses
 * the connection or (behind NAT, a hypervisor's port forward) accepts it and stays silent;
 * a full dial would wait its whole per-dial deadline there, this only a few seconds.
 */
export function sshGreetingWithin(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let received = "";
    const socket = net.connect({ host, port });
    const done = (greeted: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(greeted);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      received += chunk;
      // RFC 4253 4.2: the server may send other lines before its identification line.
      if (/(^|\n)SSH-/.test(received)) done(true);
      else if (received.length > 8192) done(false);
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}
