import { z } from "zod";
import type { NodeContext, Rendered } from "./node";

export const swapSchema = z.object({ type: z.literal("swap"), randomEncryption: z.boolean().default(false) }).strict();
export type Swap = z.output<typeof swapSchema>;

export function renderSwap(swap: Swap, ctx: NodeContext): Rendered {
  // Not switched on during an install: swap is global to the kernel, and not needed there.
  return {
    create: [`mkswap ${ctx.deviceVar} >/dev/null`],
    mounts: [],
    fileSystems: {},
    swapDevices: [{ device: ctx.stableDevice, ...(swap.randomEncryption ? { randomEncryption: true } : {}) }],
  };
}
