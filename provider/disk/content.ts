import { z } from "zod";
import { btrfsFormatView, btrfsSchema, renderBtrfs } from "./btrfs";
import { filesystemFormatView, filesystemSchema, renderFilesystem } from "./filesystem";
import { luksBaseSchema, luksFormatView, luksKeyIssue, renderLuks } from "./luks";
import { lvmPvSchema, renderLvmPv } from "./lvm-pv";
import { emptyRendered, merge, type NodeContext, type Rendered } from "./node";
import { renderSwap, swapFormatView, swapSchema } from "./swap";

export type Content =
  | z.output<typeof filesystemSchema>
  | z.output<typeof btrfsSchema>
  | z.output<typeof swapSchema>
  | z.output<typeof lvmPvSchema>
  | (z.output<typeof luksBaseSchema> & { content?: Content | null | undefined });

const SUPPORTED = ["filesystem", "btrfs", "swap", "luks", "lvm_pv"];
const UNSUPPORTED: Record<string, string> = {
  zfs: "zfs pools are not supported by DiskLayout",
  mdraid: "mdadm RAID is not supported by DiskLayout",
  bcachefs: "bcachefs is not supported by DiskLayout",
  gpt: "a gpt table goes directly under a disk (disk.<name>.content)",
  table: 'legacy msdos tables are not supported; use type "gpt"',
};

function typeError(issue: { input?: unknown }): string {
  const given = (issue.input as { type?: unknown } | undefined)?.type;
  const known = `content.type is one of ${SUPPORTED.map((t) => `"${t}"`).join(", ")}`;
  if (typeof given === "string" && UNSUPPORTED[given]) return `${UNSUPPORTED[given]}; ${known}`;
  return known;
}

/** What a partition, LUKS volume or logical volume may hold. */
export const contentSchema: z.ZodType<Content> = z.lazy(() =>
  z.discriminatedUnion(
    "type",
    [
      filesystemSchema,
      btrfsSchema,
      swapSchema,
      lvmPvSchema,
      luksBaseSchema.extend({ content: contentSchema.nullish() }).superRefine(luksKeyIssue),
    ] as never,
    { error: typeError as never },
  ),
) as z.ZodType<Content>;

/** Physical volumes found in the tree, by volume group. */
export type PvCollector = (vg: string, deviceVar: string) => void;

export function renderContent(content: Content | null | undefined, ctx: NodeContext, addPv: PvCollector): Rendered {
  if (!content) return emptyRendered([]);
  switch (content.type) {
    case "filesystem":
      return renderFilesystem(content, ctx);
    case "btrfs":
      return renderBtrfs(content, ctx);
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

/** The part of a content node whose change needs formatting (see render.ts formatHash). */
export function contentFormatView(content: Content | null | undefined): unknown {
  if (!content) return null;
  switch (content.type) {
    case "filesystem":
      return filesystemFormatView(content);
    case "btrfs":
      return btrfsFormatView(content);
    case "swap":
      return swapFormatView(content);
    case "lvm_pv":
      return content;
    case "luks":
      return { ...(luksFormatView(content) as object), content: contentFormatView(content.content) };
  }
}

/** Walks every content node with its path (for validation). */
export function* contentNodes(content: Content | null | undefined, path: string): Generator<{ node: Content; path: string }> {
  if (!content) return;
  yield { node: content, path };
  if (content.type === "luks") yield* contentNodes(content.content, `${path}.content`);
}
