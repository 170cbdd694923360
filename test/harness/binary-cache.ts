// A Nix binary cache over HTTP on a loopback address: a static server over a directory that
// `nix copy --to file://<dir>` (or an HTTP PUT from `nix copy --to http://…`) wrote. It counts
// requests and bytes per method, so tests can show who fetched what from it.
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";

export interface CacheStats {
  gets: number;
  /** Bytes served for GET requests (narinfo, NARs, nix-cache-info). */
  getBytes: number;
  /** Bytes of NAR files served: what the targets downloaded. */
  narGetBytes: number;
  puts: number;
  putBytes: number;
  notFound: number;
  /** GET requests per file (e.g. "nar/<hash>.nar.zst", "<hash>.narinfo"). */
  getsByFile: Record<string, number>;
  /** PUT requests per file: the deployer's uploads. */
  putsByFile: Record<string, number>;
}

export interface BinaryCacheServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The directory served, as a file:// store URL. */
  fileUrl: string;
  dir: string;
  stats(): CacheStats;
  resetStats(): void;
  close(): Promise<void>;
}

export async function startBinaryCacheServer(dir = mkdtempSync(path.join(os.tmpdir(), "binary-cache-"))): Promise<BinaryCacheServer> {
  mkdirSync(dir, { recursive: true });
  const fresh = (): CacheStats => ({ gets: 0, getBytes: 0, narGetBytes: 0, puts: 0, putBytes: 0, notFound: 0, getsByFile: {}, putsByFile: {} });
  let stats = fresh();
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/+/, "");
    const file = path.join(dir, rel);
    if (!file.startsWith(dir + path.sep) || rel.includes("..")) {
      res.writeHead(403).end();
      return;
    }
    if (req.method === "PUT") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, body);
        stats.puts++;
        stats.putBytes += body.length;
        stats.putsByFile[rel] = (stats.putsByFile[rel] ?? 0) + 1;
        res.writeHead(200).end();
      });
      return;
    }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error("not a file");
      size = st.size;
    } catch {
      stats.notFound++;
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-length": size });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    stats.gets++;
    stats.getBytes += size;
    stats.getsByFile[rel] = (stats.getsByFile[rel] ?? 0) + 1;
    if (rel.startsWith("nar/")) stats.narGetBytes += size;
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    fileUrl: `file://${dir}`,
    dir,
    stats: () => ({ ...stats, getsByFile: { ...stats.getsByFile }, putsByFile: { ...stats.putsByFile } }),
    resetStats: () => {
      stats = fresh();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CacheKey {
  name: string;
  secretKeyFile: string;
  publicKey: string;
}

/** A binary cache signing key pair (`nix-store --generate-binary-cache-key`). */
export async function generateCacheKey(name: string): Promise<CacheKey> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cache-key-"));
  const secretKeyFile = path.join(dir, "secret");
  const publicFile = path.join(dir, "public");
  await execa("nix-store", ["--generate-binary-cache-key", name, secretKeyFile, publicFile]);
  const { readFileSync } = await import("node:fs");
  return { name, secretKeyFile, publicKey: readFileSync(publicFile, "utf8").trim() };
}
