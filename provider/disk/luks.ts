import { z } from "zod";
import { shellQuote } from "../util/shell-quote";
import { absolutePath, shellWords, wordListSchema } from "./args";
import { emptyRendered, type NodeContext, type Rendered } from "./node";

const KEY_HINT =
  'an unattended install needs the key: give settings.keyFile (a key file, e.g. "/tmp/secret.key") or passwordFile (a file holding the passphrase); NixosHost install.diskKeys uploads it there';

/** disko's `luks` node (lib/types/luks.nix), without its content (content.ts adds it). */
export const luksBaseSchema = z
  .object({
    type: z.literal("luks"),
    name: z.string().regex(/^[A-Za-z0-9_.+-]+$/, { message: "the mapper name holds letters, digits and _.+-" }),
    /** disko deprecates it for settings.keyFile / passwordFile, but still formats with it. */
    keyFile: absolutePath("/tmp/disk.key").nullish(),
    passwordFile: absolutePath("/tmp/secret.key").nullish(),
    askPassword: z.literal(false, { error: () => `askPassword prompts on a terminal; ${KEY_HINT}` }).optional(),
    /** Used to open the volume, and given to boot.initrd.luks.devices.<name> as they are (disko's meaning). */
    settings: z
      .object({
        keyFile: absolutePath("/tmp/secret.key").optional(),
        keyFileSize: z.number().int().positive().optional(),
        keyFileOffset: z.number().int().min(0).optional(),
        allowDiscards: z.boolean().optional(),
        bypassWorkqueues: z.boolean().optional(),
      })
      .catchall(z.unknown())
      .default({}),
    additionalKeyFiles: z.array(absolutePath("/tmp/disk2.key")).default([]),
    initrdUnlock: z.boolean().default(true),
    extraFormatArgs: wordListSchema,
    extraOpenArgs: wordListSchema,
  })
  .strict();

/** Applied after content.ts adds `content` (zod cannot extend a refined object). */
export function luksKeyIssue(l: { settings: { keyFile?: string | undefined }; passwordFile?: string | null | undefined; keyFile?: string | null | undefined }, ctx: z.RefinementCtx): void {
  if (!l.settings.keyFile && !l.passwordFile && !l.keyFile) ctx.addIssue({ code: "custom", message: `luks has no key; ${KEY_HINT}`, path: ["settings", "keyFile"] });
}

export type LuksBase = z.output<typeof luksBaseSchema>;

/** The key arguments and what feeds them, like disko's keyFileArgs (a passphrase without its trailing newline). */
function keyArgs(luks: LuksBase): { feed: string; feedTools: string[]; args: string[] } {
  const sizeArgs = [
    ...(luks.settings.keyFileSize !== undefined ? [`--keyfile-size ${luks.settings.keyFileSize}`] : []),
    ...(luks.settings.keyFileOffset !== undefined ? [`--keyfile-offset ${luks.settings.keyFileOffset}`] : []),
  ];
  if (luks.settings.keyFile) return { feed: "", feedTools: [], args: [`--key-file ${shellQuote(luks.settings.keyFile)}`, ...sizeArgs] };
  if (luks.passwordFile) return { feed: `printf '%s' "$(cat ${shellQuote(luks.passwordFile)})" | `, feedTools: ["cat"], args: ["--key-file -", ...sizeArgs] };
  return { feed: "", feedTools: [], args: [`--key-file ${shellQuote(luks.keyFile!)}`, ...sizeArgs] };
}

function openCommand(luks: LuksBase, device: string, persistent: boolean): string {
  const key = keyArgs(luks);
  return [
    `${key.feed}cryptsetup open ${device} ${luks.name}`,
    ...(luks.settings.allowDiscards ? ["--allow-discards"] : []),
    ...(luks.settings.bypassWorkqueues ? ["--perf-no_read_workqueue --perf-no_write_workqueue"] : []),
    ...shellWords(luks.extraOpenArgs),
    ...key.args,
    ...(persistent ? ["--persistent"] : []),
  ].join(" ");
}

export function renderLuks(luks: LuksBase, ctx: NodeContext): { rendered: Rendered; inner: NodeContext } {
  const key = keyArgs(luks);
  const out = emptyRendered(["cryptsetup", ...key.feedTools]);
  out.create.push([`${key.feed}cryptsetup -q luksFormat ${ctx.deviceVar}`, ...shellWords(luks.extraFormatArgs), ...key.args].join(" "));
  out.create.push(openCommand(luks, ctx.deviceVar, true));
  for (const extra of luks.additionalKeyFiles) out.create.push(`${key.feed}cryptsetup luksAddKey ${ctx.deviceVar} ${shellQuote(extra)} ${key.args.join(" ")}`);
  // Idempotent: a mapping already open on this device is kept; one on another device stops the script.
  out.open.push(`luks_is_open ${luks.name} ${ctx.deviceVar} || ${openCommand(luks, ctx.deviceVar, false)}`);
  if (luks.initrdUnlock) out.nixos.luksDevices[luks.name] = { device: ctx.stableDevice, ...luks.settings };
  const mapper = `/dev/mapper/${luks.name}`;
  return { rendered: out, inner: { deviceVar: mapper, stableDevice: mapper, path: `${ctx.path}.content` } };
}

/** Opening options and the initrd entry change without reformatting; keys and format args do not. */
export function luksFormatView(luks: LuksBase): unknown {
  const { keyFile, keyFileSize, keyFileOffset } = luks.settings;
  return {
    type: luks.type,
    name: luks.name,
    keyFile: luks.keyFile,
    passwordFile: luks.passwordFile,
    settings: { keyFile, keyFileSize, keyFileOffset },
    additionalKeyFiles: luks.additionalKeyFiles,
    extraFormatArgs: luks.extraFormatArgs,
  };
}
