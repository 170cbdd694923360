// Partition geometry refused before anything is written: overlaps and partitions after the
// rest of the disk at `check` (any disk size), partitions larger than the disk once its size
// is known. The placement is checked against real sgdisk on a sparse image file: where it
// says a layout fits, sgdisk makes the same partitions; where it refuses, sgdisk fails too.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { normalizePartitions, resolveLayout } from "../../provider/disk";
import { layoutShape } from "../../provider/disk/schema";
import { placePartitions } from "../../provider/disk/geometry";
import type { Disk } from "../../provider/disk/disk";
import { tutorialLayout } from "../fixtures/layouts";

type Partitions = Record<string, Record<string, unknown>>;
const layoutWith = (partitions: Partitions) => ({ disk: { main: { device: "/dev/vda", content: { type: "gpt", partitions } } } });
const rootFs = { type: "filesystem", format: "ext4", mountpoint: "/" };
const GiB = 1024 ** 3;

/** The disk as the schema normalizes it, without the rules across nodes (geometry included). */
function diskOf(partitions: Partitions): Disk {
  return layoutShape.parse(layoutWith(partitions)).disk["main"]!;
}

test("overlapping partitions are refused at check, naming the partition and where it may start", async () => {
  const layout = layoutWith({
    a: { priority: 1, start: "1M", end: "+1G" },
    b: { priority: 2, start: "512M", end: "+1G", content: rootFs },
  });
  await assert.rejects(resolveLayout(layout), (err: Error) => {
    assert.match(err.message, /disk\.main\.content\.partitions\.b\.start: b would start at 512 MiB, inside a \(1 MiB to 1\.0 GiB\); give it a start after 1\.0 GiB or leave start out/);
    return true;
  });
});

test("a partition placed after the one that takes the rest of the disk is refused at check", async () => {
  const layout = layoutWith({
    root: { priority: 1, size: "100%", content: rootFs },
    swap: { priority: 2, size: "1G", content: { type: "swap" } },
  });
  await assert.rejects(resolveLayout(layout), /partitions\.swap\.size: no room is left on \/dev\/vda for swap after root; make the partitions before it smaller, or give swap "100%"/);
});

test("partitions larger than the disk pass check (the size is not known yet) and are refused once it is, pointing at the partition", async () => {
  const disk = diskOf({ ESP: { priority: 1, size: "512M", type: "EF00" }, root: { priority: 2, size: "20G", content: rootFs } });
  assert.equal(placePartitions("main", disk, { sizeBytes: 64 * GiB, sectorBytes: 512 }).issue, undefined);
  const { issue } = placePartitions("main", disk, { sizeBytes: 10 * GiB, sectorBytes: 512 });
  assert.deepEqual(issue && [issue.key, issue.field], ["root", "size"]);
  assert.match(issue!.message, /root needs 20 GiB from 513 MiB after ESP, but \/dev\/vda \(10 GiB\) has 9\.5 GiB left there; make root at most 9\.5 GiB \(or "100%", the rest of the disk\)/);
});

test("the tutorial's layout fits a 1 GiB disk of 512- and of 4096-byte sectors", async () => {
  const disk = (await resolveLayout(tutorialLayout())).disk["main"]!;
  for (const sectorBytes of [512, 4096]) assert.equal(placePartitions("main", disk, { sizeBytes: GiB, sectorBytes }).issue, undefined);
});

/** What real sgdisk makes of the same partitions (disko's arguments) on a sparse image file of `sizeBytes`. */
async function sgdisk(disk: Disk, sizeBytes: number): Promise<{ ok: boolean; placed: [string, number, number][]; output: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "geometry-"));
  const image = path.join(dir, "disk.img");
  try {
    writeFileSync(image, "");
    truncateSync(image, sizeBytes);
    const partitions = normalizePartitions("main", disk.content);
    // --pretend: the partitions are made in memory and printed, nothing is written.
    const made = await execa("sgdisk", ["--pretend", "--align-end", ...partitions.map((p) => `--new=${p.index}:${p.start}:${p.end}`), "--print", image], { reject: false });
    if (made.exitCode !== 0) return { ok: false, placed: [], output: `${made.stdout}\n${made.stderr}` };
    const placed = partitions.map((p): [string, number, number] => {
      const row = new RegExp(`^\\s*${p.index}\\s+(\\d+)\\s+(\\d+)\\s`, "m").exec(made.stdout)!;
      return [p.key, Number(row[1]), Number(row[2])];
    });
    return { ok: true, placed, output: "" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the placement agrees with real sgdisk: same sectors where it fits, a failure where it is refused", async () => {
  const cases: [Partitions, number][] = [
    [{ MBR: { priority: 0, size: "1M", type: "EF02" }, ESP: { priority: 1, size: "500M", type: "EF00" }, root: { priority: 2, size: "100%", content: rootFs } }, GiB],
    [{ ESP: { priority: 1, size: "512M", type: "EF00" }, root: { priority: 2, size: "2G", content: rootFs } }, 2 * GiB],
    [{ ESP: { priority: 1, size: "512M", type: "EF00" }, root: { priority: 2, size: "1G", content: rootFs } }, 2 * GiB],
    [{ ESP: { priority: 1, size: "512M" }, root: { priority: 2, size: "1534M", content: rootFs } }, 2 * GiB],
    [{ ESP: { priority: 1, size: "512M" }, root: { priority: 2, size: "1535M", content: rootFs } }, 2 * GiB],
    [{ root: { priority: 1, end: "-512M", content: rootFs }, swap: { priority: 2, size: "256M", content: { type: "swap" } } }, 2 * GiB],
    [{ root: { priority: 1, end: "-512M", content: rootFs }, swap: { priority: 2, size: "600M", content: { type: "swap" } } }, 2 * GiB],
    [{ a: { priority: 1, start: "1M", end: "+100M" }, root: { priority: 2, start: "200M", end: "-0", content: rootFs } }, GiB],
    [{ a: { priority: 1, start: "1M", end: "+1G" }, b: { priority: 2, start: "512M", end: "+1G", content: rootFs } }, 4 * GiB],
    [{ a: { priority: 1, start: "2048s", end: "+100M" }, b: { priority: 2, size: "100%", content: rootFs } }, GiB],
  ];
  for (const [partitions, size] of cases) {
    const disk = diskOf(partitions);
    const ours = placePartitions("main", disk, { sizeBytes: size, sectorBytes: 512 });
    const real = await sgdisk(disk, size);
    const label = `${JSON.stringify(partitions)} on ${size} bytes`;
    assert.equal(ours.issue === undefined, real.ok, `${label}: ours ${ours.issue?.message ?? "fits"}; sgdisk ${real.ok ? "fits" : real.output}`);
    if (real.ok) assert.deepEqual(ours.placed.map((p) => [p.key, p.first, p.last]), real.placed, label);
  }
});
