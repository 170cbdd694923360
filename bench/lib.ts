// Shared bits of the benchmarks: timing, the OpenSSH baseline's options, result tables.
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TestHost } from "../test/harness/hosts";

export async function timed<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await run();
  return { seconds: (performance.now() - started) / 1000, value };
}

/** NIX_SSHOPTS for the OpenSSH baseline: the test key and a pinned known_hosts file (`via`: a proxy in front). */
export function opensshOptions(host: TestHost, via?: { address: string; port: number }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-ssh-"));
  const knownHosts = path.join(dir, "known_hosts");
  const name = via ? `[${via.address}]:${via.port}` : host.address;
  writeFileSync(knownHosts, `${name} ${host.hostPublicKey}\n`);
  return `-i ${host.clientPrivateKeyPath} -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes${via ? ` -p ${via.port}` : ""}`;
}

export function table(rows: (string | number)[][]): string {
  return rows.map((r) => r.join(" | ")).join("\n");
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "median (min–max)" of samples, for tables that show the spread. */
export function summary(values: number[], digits = 2): string {
  return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
}
