import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import type { NodeContext, Rendered } from "./node";

export const luksBaseSchema = z
  .object({
    type: z.literal("luks"),
    name: z.string().regex(/^[A-Za-z0-9_-]+$/, { message: "the mapper name holds letters, digits, '-' and '_'" }),
    /**
     * Path of the key file on the target during the install. The installer uploads the
     * NixosHost's disk key there; the key itself never enters the script or the state.
     */
    keyFile: z.string({ error: 'luks needs keyFile: the path of the key file on the target during the install, e.g. "/tmp/disk.key"' }).regex(/^\/[^\0]+$/, { message: 'give the absolute path of the key file on the target, e.g. "/tmp/disk.key"' }),
    extraFormatArgs: z.array(z.string()).default([]),
  })
  .strict();

export function renderLuks(luks: z.output<typeof luksBaseSchema>, ctx: NodeContext): { rendered: Rendered; inner: NodeContext } {
  const key = shellQuote(luks.keyFile);
  const open = `cryptsetup open ${ctx.deviceVar} ${luks.name} --key-file ${key}`;
  return {
    rendered: {
      create: [`cryptsetup -q luksFormat --type luks2 ${luks.extraFormatArgs.map(shellQuote).join(" ")} ${ctx.deviceVar} ${key}`.replace(/ {2,}/g, " "), open],
      mounts: [],
      fileSystems: {},
      swapDevices: [],
      open: [open],
    },
    inner: { deviceVar: `/dev/mapper/${luks.name}`, stableDevice: `/dev/mapper/${luks.name}`, path: `${ctx.path}.content` },
  };
}
