import * as net from "node:net";

export type GreetingProbe = { greeted: true } | { greeted: false; reason: string };

/**
 * Whether `host:port` sends an SSH identification line ("SSH-…") within `timeoutMs`, on one
 * TCP connection that is closed right after; if not, why (refused, silent, closed). A machine
 * that is still booting either refuses the connection or (behind NAT, a hypervisor's port
 * forward) accepts it and stays silent; a full dial would wait its whole per-dial deadline
 * there, this only a few seconds.
 */
export function sshGreetingWithin(host: string, port: number, timeoutMs: number): Promise<GreetingProbe> {
  return new Promise((resolve) => {
    let received = "";
    let connected = false;
    const socket = net.connect({ host, port });
    const done = (result: GreetingProbe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => done({ greeted: false, reason: connected ? `accepted TCP but sent no SSH greeting within ${timeoutMs / 1000} s` : `no TCP connection within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    socket.setEncoding("latin1");
    socket.on("connect", () => (connected = true));
    socket.on("data", (chunk: string) => {
      received += chunk;
      // RFC 4253 4.2: the server may send other lines before its identification line.
      if (/(^|\n)SSH-/.test(received)) done({ greeted: true });
      else if (received.length > 8192) done({ greeted: false, reason: "sent no SSH identification line (not an SSH server?)" });
    });
    socket.on("error", (err) => done({ greeted: false, reason: err.message }));
    socket.on("close", () => done({ greeted: false, reason: "closed the connection without an SSH greeting" }));
  });
}
