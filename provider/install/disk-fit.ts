// The layout's partitions placed on the machine's real disks, before anything is written:
// a partition that does not fit fails `sgdisk --new` after the table was already wiped.
import { NixosPulumiError } from "../errors";
import { placePartitions } from "../disk/geometry";
import { shellQuote } from "../util/shell-quote";
import type { InstallContext } from "./context";

/**
 * Reads each layout disk's size and logical sector size (`blockdev`, run as root) and refuses
 * a layout that does not fit. A device the machine lacks is an error when `devicesMustExist`
 * (in the installer, right before the disko phase); before a kexec it is only skipped, the
 * installer's kernel may name disks its own way.
 */
export async function refuseLayoutThatDoesNotFit(ctx: InstallContext, step: "facts" | "disko", devicesMustExist: boolean): Promise<void> {
  const layout = ctx.layout;
  if (!layout || layout.diskoScript) return;
  const disks = Object.entries(layout.spec.disk ?? {});
  if (disks.length === 0) return;
  const out = await ctx.session.execOk(
    disks
      .map(([, d]) => `if [ -b ${shellQuote(d.device)} ] && command -v blockdev >/dev/null; then echo "$(blockdev --getss --getsize64 ${shellQuote(d.device)} | tr '\\n' ' ')"; else echo missing; fi`)
      .join("; "),
    step,
  );
  const lines = out.trim().split("\n");
  const host = ctx.spec.connection.host;
  for (const [i, [key, disk]] of disks.entries()) {
    const [sector, size] = (lines[i] ?? "missing").trim().split(/\s+/).map(Number);
    if (!sector || !size) {
      if (!devicesMustExist) continue;
      throw new NixosPulumiError(`diskLayout disk "${key}": ${disk.device} is not a block device on the machine; nothing was written`, {
        step,
        host,
        hint: `give the disk's device as the machine names it (see \`lsblk\` there), e.g. /dev/vda or /dev/disk/by-id/…`,
      });
    }
    const { issue } = placePartitions(key, disk, { sizeBytes: size, sectorBytes: sector });
    if (issue) {
      throw new NixosPulumiError(`diskLayout disk "${key}": ${issue.message}; nothing was written`, {
        step,
        host,
        hint: `change disk.${key}.content.partitions.${issue.key}.${issue.field} in the DiskLayout (the disk holds ${size} bytes)`,
      });
    }
  }
}
