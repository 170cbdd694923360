// The bits of Nix's serve protocol (`nix-store --serve`, what nix-copy-closure speaks) the copy
// uses: the hello, DumpStorePath (a path's NAR, without the re-hash `--export` does) and
// AddToStoreNar (a NAR streamed straight into the store, parsed once, unlike `--import`).
// Numbers are little-endian u64; strings are length, bytes, zero padding to 8.
import type { PathInfo } from "../nix/closure";

export const SERVE_MAGIC_1 = 0x390c9deb;
export const SERVE_MAGIC_2 = 0x5452eecb;
/** 2.5: the first version with AddToStoreNar; later servers still accept it. */
export const CLIENT_VERSION = 0x205;
const CMD_QUERY_VALID_PATHS = 1;
const CMD_DUMP_STORE_PATH = 3;
const CMD_ADD_TO_STORE_NAR = 9;

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function str(s: string): Buffer {
  const bytes = Buffer.from(s, "utf8");
  const pad = (8 - (bytes.length % 8)) % 8;
  return Buffer.concat([u64(bytes.length), bytes, Buffer.alloc(pad)]);
}

function strings(list: string[]): Buffer {
  return Buffer.concat([u64(list.length), ...list.map(str)]);
}

export function hello(): Buffer {
  return Buffer.concat([u64(SERVE_MAGIC_1), u64(CLIENT_VERSION)]);
}

/** QueryValidPaths without locking or substituting: the reply is the set of those valid. */
export function queryValidPaths(paths: string[]): Buffer {
  return Buffer.concat([u64(CMD_QUERY_VALID_PATHS), u64(0), u64(0), strings(paths)]);
}

export function dumpStorePath(path: string): Buffer {
  return Buffer.concat([u64(CMD_DUMP_STORE_PATH), str(path)]);
}

/** The command and path info that precede a path's NAR (narSize bytes) in AddToStoreNar. */
export function addToStoreNarHeader(info: PathInfo): Buffer {
  return Buffer.concat([
    u64(CMD_ADD_TO_STORE_NAR),
    str(info.path),
    str(info.deriver),
    str(info.narHash),
    strings([...info.references].sort()),
    u64(info.registrationTime),
    u64(info.narSize),
    u64(info.ultimate ? 1 : 0),
    strings(info.sigs),
    str(info.ca),
  ]);
}

/**
 * Reads a server's replies: its hello (magic, version), then one u64 per command. Calls
 * onReply with each reply's value; throws on a wrong magic or a server without AddToStoreNar.
 */
export class ReplyReader {
  private pending: Buffer = Buffer.alloc(0);
  private greeted = false;
  private onSet: ((paths: string[]) => void) | undefined;
  replies = 0;

  constructor(private readonly onReply: (value: bigint) => void) {}

  /** The next reply is a set of strings (QueryValidPaths'), not a number. */
  expectSet(onSet: (paths: string[]) => void): void {
    this.onSet = onSet;
  }

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    if (!this.greeted) {
      if (this.pending.length < 16) return;
      const magic = this.pending.readBigUInt64LE(0);
      const version = Number(this.pending.readBigUInt64LE(8));
      if (magic !== BigInt(SERVE_MAGIC_2)) throw new Error("the target's `nix-store --serve` did not answer with the serve protocol");
      if ((version & 0xff00) !== 0x200 || (version & 0xff) < 5) {
        throw new Error(`the target's Nix speaks serve protocol ${version >> 8}.${version & 0xff}; copying needs 2.5 or later (Nix >= 2.0)`);
      }
      this.greeted = true;
      this.pending = this.pending.subarray(16);
    }
    if (this.onSet) {
      const set = readStrings(this.pending);
      if (!set) return;
      const onSet = this.onSet;
      this.onSet = undefined;
      this.pending = this.pending.subarray(set.end);
      onSet(set.strings);
    }
    while (this.pending.length >= 8) {
      this.replies++;
      this.onReply(this.pending.readBigUInt64LE(0));
      this.pending = this.pending.subarray(8);
    }
  }
}

/** A count and that many strings at the start of `b`, or undefined while incomplete. */
function readStrings(b: Buffer): { strings: string[]; end: number } | undefined {
  if (b.length < 8) return undefined;
  const count = Number(b.readBigUInt64LE(0));
  const strings: string[] = [];
  let at = 8;
  for (let i = 0; i < count; i++) {
    if (b.length < at + 8) return undefined;
    const length = Number(b.readBigUInt64LE(at));
    const end = at + 8 + length + ((8 - (length % 8)) % 8);
    if (b.length < end) return undefined;
    strings.push(b.toString("utf8", at + 8, at + 8 + length));
    at = end;
  }
  return { strings, end: at };
}
