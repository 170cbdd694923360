import * as net from "node:net";

/** Probes found no SSH greeting (thrown by a wait's dial, install/greeted-dial.ts). */
export class NoSshGreeting extends Error {}

export type GreetingProbe = { greeted: true } | { greeted: false; reason: string };

/**
 * Whether `host:port` sends an SSH identification line ("SSH-…") within `timeoutMs`, on one
 * TCP connection that is closed right after; if not, why (refused, silent, closed). A machine
 * that is still booting either refuses the connection or (behind NAT, a hypervisor's port
 * forward) accepts it and stays silent; a full dial would wait its whole per-dial deadline
 * there, this only a few seconds.
 */
export function sshGreetingWithin(host: string, port: number, timeoutMs: number): Promise<GreetingProbe> {
  return greetingProbe(host, port, timeoutMs).result;
}

/** One probe, and a way to end it early (its result then never resolves). */
function greetingProbe(host: string, port: number, timeoutMs: number): { result: Promise<GreetingProbe>; cancel: () => void } {
  let cancel = () => undefined as void;
  const result = new Promise<GreetingProbe>((resolve) => {
    let received = "";
    let connected = false;
    let ended = false;
    const socket = net.connect({ host, port });
    const done = (result: GreetingProbe) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    cancel = () => {
      ended = true;
      clearTimeout(timer);
      socket.destroy();
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
  return { result, cancel };
}

/**
 * Probes started `everyMs` apart within `windowMs`, each waiting until the window ends (at
 * least `everyMs`): greeted as soon as any of them is. A machine coming back behind a forward that accepts every connection
 * (QEMU's user network, a NAT) answers only connections whose SYN reaches it once it is up, and
 * a SYN sent earlier is retried with growing pauses (3 s, then 6 s in QEMU's slirp): one probe
 * at a time sees the machine seconds late, fresh ones a second apart see it within a second.
 * Not greeted: the reason of the last probe to end.
 */
export function sshGreetingSoon(host: string, port: number, options: { windowMs: number; everyMs: number }): Promise<GreetingProbe> {
  const planned = Math.max(1, Math.ceil(options.windowMs / options.everyMs));
  return new Promise((resolve) => {
    let launched = 0;
    let running = 0;
    let settled = false;
    let next: NodeJS.Timeout | undefined;
    const cancels = new Set<() => void>();
    const finish = (result: GreetingProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(next);
      for (const cancel of cancels) cancel();
      resolve(result);
    };
    const launch = () => {
      launched++;
      running++;
      // All end by the window's end: a probe started late waits only what is left of it.
      const left = options.windowMs - (launched - 1) * options.everyMs;
      const probe = greetingProbe(host, port, Math.max(options.everyMs, left));
      cancels.add(probe.cancel);
      void probe.result.then((r) => {
        cancels.delete(probe.cancel);
        running--;
        if (r.greeted || (launched === planned && running === 0)) finish(r);
      });
      if (launched < planned) next = setTimeout(launch, options.everyMs);
    };
    launch();
  });
}
