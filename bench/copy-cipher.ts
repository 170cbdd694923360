// Benchmark (not a test): bytes/s through one ssh2 session to a test host per cipher, to
// choose the cipher order. Both ends run on this machine (AES-NI), so it shows what putting
// chacha20-poly1305 first costs where AES is fast; the QEMU guest without AES is in issue 14.
// Run: flock /tmp/nixos-pulumi-heavy.lock node dist/bench/copy-cipher.js   (result: bench/results/copy-cipher.json)
import { Client } from "ssh2";
import { startHost, type TestHost } from "../test/harness/hosts";
import { figure, startRun, summary, writeResult } from "./lib";

const MIB = Number(process.env["BENCH_MIB"] ?? 200);
const REPEAT = Number(process.env["BENCH_REPEAT"] ?? 5);
const CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"];

function send(host: TestHost, cipher: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.on("error", reject);
    client.on("ready", () => {
      client.exec("cat >/dev/null", (err, channel) => {
        if (err) return reject(err);
        const chunk = Buffer.alloc(1024 * 1024, 7);
        const started = performance.now();
        channel.resume(); // "close" comes only after the (empty) output was read
        channel.stderr.resume();
        channel.on("close", () => {
          client.end();
          resolve((performance.now() - started) / 1000);
        });
        let left = MIB;
        const write = () => {
          while (left > 0) {
            left--;
            if (!channel.write(chunk)) return channel.once("drain", write);
          }
          channel.end();
        };
        write();
      });
    });
    client.connect({ host: host.address, username: "root", privateKey: host.clientPrivateKey, algorithms: { cipher: [cipher] as never } });
  });
}

async function main() {
  const run = startRun("copy-cipher");
  const host = await startHost({ name: "cipher", state: "installer" });
  try {
    const samples: Record<string, number[]> = Object.fromEntries(CIPHERS.map((c) => [c, []]));
    for (let rep = 0; rep < REPEAT; rep++) {
      const order = rep % 2 ? [...CIPHERS].reverse() : CIPHERS;
      for (const c of order) samples[c]!.push(await send(host, c));
    }
    for (const c of CIPHERS) console.log(`${c}: ${MIB} MiB in ${summary(samples[c]!)} s`);
    const ratios = samples[CIPHERS[0]!]!.map((s, i) => s / samples[CIPHERS[1]!]![i]!);
    console.log(`chacha20-poly1305 / aes128-gcm: ${summary(ratios)}`);
    writeResult(run, { repeat: REPEAT, mib: MIB, seconds: Object.fromEntries(CIPHERS.map((c) => [c, figure(samples[c]!)])), ratio: figure(ratios) });
  } finally {
    await host.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
