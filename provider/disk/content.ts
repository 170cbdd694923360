import { z } from "zod";
import { filesystemSchema, renderFilesystem } from "./filesystem";
import { luksBaseSchema, renderLuks } from "./luks";
import { lvmPvSchema, renderLvmPv } from "./lvm-pv";
import { emptyRendered, merge, type NodeContext, type Rendered } from "./node";
import { renderSwap, swapSchema } from "./swap";

export type Content =
  | z.output<typeof filesystemSchema>
  | z.output<typeof swapSchema>
  | z.output<typeof lvmPvSchema>
  | (z.output<typeof luksBaseSchema> & { content?: Content | undefined });

/** What a partition, LUKS volume or logical volume may hold. */
export const contentSchema: z.ZodType<Content> = z.lazy(() =>
  z.discriminatedUnion(
    "type",
    [filesystemSchema, swapSchema, lvmPvSchema, luksBaseSchema.extend({ content: contentSchema.optional() })] as never,
    { error: () => 'content.type is one of "filesystem", "swap", "luks", "lvm_pv"' },
  ),
) as z.ZodType<Content>;

/** Physical volumes found in the tree, by volume group. */
export type PvCollector = (vg: string, deviceVar: string) => void;

export function renderContent(content: Content | undefined, ctx: NodeContext, addPv: PvCollector): Rendered {
  if (!content) return emptyRendered();
  switch (content.type) {
    case "filesystem":
      return renderFilesystem(content, ctx);
    case "swap":
      return renderSwap(content, ctx);
    case "lvm_pv":
      addPv(content.vg, ctx.deviceVar);
      return renderLvmPv(content, ctx);
    case "luks": {
      const { rendered, inner } = renderLuks(content, ctx);
      return merge(rendered, renderContent(content.content, inner, addPv));
    }
  }
}

/** Walks every content node with its path (for validation). */
export function* contentNodes(content: Content | undefined, path: string): Generator<{ node: Content; path: string }> {
  if (!content) return;
  yield { node: content, path };
  if (content.type === "luks") yield* contentNodes(content.content, `${path}.content`);
}
