import { z } from "zod";
import { shellWords, wordListSchema } from "./args";
import { emptyRendered, type NodeContext, type Rendered } from "./node";

/** disko's `swap` node (lib/types/swap.nix). */
export const swapSchema = z
  .object({
    type: z.literal("swap"),
    discardPolicy: z.enum(["once", "pages", "both"], { error: () => 'discardPolicy is one of "once", "pages", "both" (or leave it out)' }).nullish(),
    extraArgs: wordListSchema,
    mountOptions: z.array(z.string().min(1)).default(["defaults"]),
    priority: z.number().int().min(0).max(32767).nullish(),
    randomEncryption: z.boolean().default(false),
    resumeDevice: z.boolean().default(false),
  })
  .strict();
export type Swap = z.output<typeof swapSchema>;

export function renderSwap(swap: Swap, ctx: NodeContext): Rendered {
  const out = emptyRendered(swap.randomEncryption ? [] : ["mkswap"]);
  // Like disko: a randomly encrypted swap is set up by NixOS at each boot, not formatted here.
  // Swap is not switched on during the install: it is global to the installer's kernel.
  if (!swap.randomEncryption) out.create.push(["mkswap", ...shellWords(swap.extraArgs), ctx.deviceVar, ">/dev/null"].join(" "));
  out.nixos.swapDevices.push({
    device: ctx.stableDevice,
    discardPolicy: swap.discardPolicy ?? null,
    priority: swap.priority ?? null,
    randomEncryption: { enable: swap.randomEncryption, allowDiscards: swap.discardPolicy != null },
    options: swap.mountOptions,
  });
  if (swap.resumeDevice) out.nixos.resumeDevice = ctx.stableDevice;
  return out;
}

/** How the swap is used changes without formatting; randomEncryption decides mkswap. */
export function swapFormatView(swap: Swap): unknown {
  return { type: swap.type, extraArgs: swap.extraArgs, randomEncryption: swap.randomEncryption };
}
