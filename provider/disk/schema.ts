import { z } from "zod";
import { diskSchema } from "./disk";
import { lvmVgSchema } from "./lvm-vg";

export const layoutShape = z
  .object({
    disk: z
      .record(z.string().regex(/^[A-Za-z0-9_-]+$/, { message: "disk names hold letters, digits, '-' and '_'" }), diskSchema)
      .refine((d) => Object.keys(d).length > 0, { message: "declare at least one disk" }),
    lvm_vg: z.record(z.string().regex(/^[A-Za-z0-9_+.-]+$/, { message: "volume group names hold letters, digits and _+.-" }), lvmVgSchema).optional(),
  })
  .strict();

export type LayoutShape = z.output<typeof layoutShape>;
