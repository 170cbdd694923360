// Where sgdisk would place each partition of a disk, computed before anything is written: a
// layout whose partitions overlap or do not fit makes `sgdisk --new` fail halfway through the
// disk script, after `--zap-all` wiped the table and the first partitions were made.
import { normalizePartitions, type NormalizedPartition } from "./gpt";
import { diskName, type Disk } from "./disk";

const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };
/** sgdisk's default alignment: 1 MiB. */
const ALIGN_BYTES = 1024 ** 2;
/** The GPT's 128 entries of 128 bytes, before the first usable sector and after the last. */
const ENTRIES_BYTES = 128 * 128;
/** Standing in for "as large as any disk" when the disk's size is not known yet (`check`). */
export const UNKNOWN_DISK_BYTES = 2 ** 60;

export interface DiskGeometry {
  sizeBytes: number;
  sectorBytes: number;
}

export interface Placement {
  key: string;
  first: number;
  last: number;
}

export interface GeometryIssue {
  /** The partition's key in `partitions`. */
  key: string;
  field: "size" | "start" | "end";
  message: string;
}

type Block = { first: number; last: number };

function freeBlocks(usable: Block, placed: Placement[]): Block[] {
  const blocks: Block[] = [];
  let next = usable.first;
  for (const p of [...placed].sort((a, b) => a.first - b.first)) {
    if (p.first > next) blocks.push({ first: next, last: p.first - 1 });
    next = Math.max(next, p.last + 1);
  }
  if (next <= usable.last) blocks.push({ first: next, last: usable.last });
  return blocks;
}

/** sgdisk's position syntax: "0" (default), "+X" (after the default start), "-X" (before the block's end), or absolute. */
function position(text: string, sector: number, low: number, high: number, def: number): number {
  const m = /^([+-]?)([0-9]+)([KMGTPs]?)$/.exec(text);
  if (!m) return def;
  const [, sign, digits, unit] = m;
  const value = unit === "s" ? Number(digits) : Math.ceil((Number(digits) * (UNITS[unit!] ?? 1)) / sector);
  if (sign === "+") return low + value - 1;
  if (sign === "-") return high - value;
  return value === 0 ? def : value;
}

const human = (bytes: number) =>
  bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(bytes % 1024 ** 3 === 0 ? 0 : 1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;

/**
 * Places the partitions in sgdisk's order, the way `sgdisk --align-end --new=i:start:end`
 * does: the default start is the first aligned sector of the largest free block, "+size" ends
 * counted from the start, "-X" from the end of that block. Stops at the first partition that
 * cannot be made, saying why and what to change.
 */
export function placePartitions(key: string, disk: Disk, geometry: DiskGeometry): { placed: Placement[]; issue?: GeometryIssue } {
  const s = geometry.sectorBytes;
  const sectors = Math.floor(geometry.sizeBytes / s);
  const align = Math.max(1, ALIGN_BYTES / s);
  const reserved = 1 + Math.ceil(ENTRIES_BYTES / s);
  const usable: Block = { first: 1 + reserved, last: sectors - 1 - reserved };
  const known = geometry.sizeBytes < UNKNOWN_DISK_BYTES;
  const where = known ? `${disk.device} (${human(geometry.sizeBytes)})` : disk.device;
  // On a disk of unknown size, a place near its end is told from the end.
  const at = (sector: number) => (!known && sector > sectors / 2 ? `${human((sectors - sector) * s)} before the disk's end` : human(sector * s));
  const placed: Placement[] = [];
  const partitions: NormalizedPartition[] = normalizePartitions(diskName(key, disk), disk.content);
  for (const p of partitions) {
    const blocks = freeBlocks(usable, placed);
    const largest = blocks.reduce<Block | undefined>((best, b) => (!best || b.last - b.first > best.last - best.first ? b : best), undefined);
    const after = placed.length > 0 ? ` after ${placed.map((q) => q.key).join(", ")}` : "";
    const fix = `make the partitions before it smaller, or give ${p.key} "100%" (the rest of the disk)`;
    if (!largest || largest.last - largest.first + 1 < align) {
      return { placed, issue: { key: p.key, field: "size", message: `no room is left on ${where} for ${p.key}${after}; ${fix}` } };
    }
    const low = Math.ceil(largest.first / align) * align;
    const high = largest.last;
    const a = p.alignment || align;
    let first = position(p.start, s, low, high, low);
    if (p.start !== "0") first = Math.ceil(first / a) * a;
    let last = position(p.end, s, first, high, high);
    if (a > 1 && (last + 1) % a !== 0 && Math.floor((last + 1) / a) * a - 1 > first) last = Math.floor((last + 1) / a) * a - 1;
    const home = blocks.find((b) => b.first <= first && first <= b.last);
    if (!home) {
      const taken = placed.find((q) => q.first <= first && first <= q.last);
      return {
        placed,
        issue: {
          key: p.key,
          field: "start",
          message: taken
            ? `${p.key} would start at ${at(first)}, inside ${taken.key} (${at(taken.first)} to ${at(taken.last + 1)}); give it a start after ${at(taken.last + 1)} or leave start out`
            : `${p.key} would start at ${at(first)}, beyond the end of ${where}; give it a start inside the disk or leave start out`,
        },
      };
    }
    if (last < first || last > home.last) {
      const room = (home.last - first + 1) * s;
      const blocker = placed.find((q) => q.first > first && q.first <= last);
      const needs = (last - first + 1) * s;
      const message = blocker
        ? `${p.key} (${human(needs)} from ${at(first)}) would overlap ${blocker.key}, which starts at ${at(blocker.first)}; make ${p.key} at most ${human(room)}, or move ${blocker.key}`
        : last < first
          ? `${p.key} would end (${p.end}) before it starts (${at(first)}) on ${where}; ${fix}`
          : `${p.key} needs ${human(needs)} from ${at(first)}${after}, but ${where} has ${human(room)} left there; make ${p.key} at most ${human(room)} (or "100%", the rest of the disk), or the partitions before it smaller`;
      return { placed, issue: { key: p.key, field: p.end === `+${p.size}` ? "size" : "end", message } };
    }
    placed.push({ key: p.key, first, last });
  }
  return { placed };
}

/** The first geometry issue of a disk, if any; without a size, only what fails on a disk of any size. */
export function diskGeometryIssue(key: string, disk: Disk, geometry: DiskGeometry = { sizeBytes: UNKNOWN_DISK_BYTES, sectorBytes: 512 }): GeometryIssue | undefined {
  return placePartitions(key, disk, geometry).issue;
}
