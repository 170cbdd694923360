// NixosHost's `keys`: secrets that reach the machine as files with an owner, group and mode,
// never through the world-readable Nix store (colmena's and NixOps' deployment.keys).
import { z } from "zod";

/** The file name in destDir: no slash, no leading dot (the upload's staging names start with one). */
export const KEY_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** A user or group name, resolved on the machine (colmena accepts ^[a-z][-a-z0-9]*$). */
const UNIX_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
/** The digest `check` adds: sha256 of the content, kept inside the key's secret entry. */
export const DIGEST = /^[0-9a-f]{64}$/;

export const DEFAULT_KEY_DIR = "/run/keys";

function unixName(what: "owner" | "group") {
  return z
    .string()
    .regex(UNIX_NAME, { message: `give the ${what} as a user${what === "group" ? "'s group" : ""} name such as "root" or "nginx" (resolved on the machine)` })
    .default("root");
}

export const keySchema = z
  .object({
    /** The secret itself (text). */
    content: z.string().optional(),
    /** Or a file on the deployer, read at every `pulumi up` (never copied into the state). */
    file: z.string().min(1, "give the path of a file on the deploying machine").optional(),
    /** The directory the key is written to as <destDir>/<name>; /run/keys (in memory on NixOS) by default. */
    destDir: z
      .string()
      .regex(/^\/[^\0]*$/, { message: "give an absolute directory such as /run/keys or /var/lib/secrets" })
      .refine((d) => !d.split("/").includes(".."), { message: "destDir may not contain .." })
      .default(DEFAULT_KEY_DIR),
    owner: unixName("owner"),
    group: unixName("group"),
    mode: z.string().regex(/^0?[0-7]{3}$/, { message: 'give an octal mode such as "0600" or "0640"' }).default("0600"),
    uploadAt: z
      .enum(["pre-activation", "post-activation"], {
        error: () => 'uploadAt is "pre-activation" (before switch-to-configuration runs) or "post-activation" (after it succeeded)',
      })
      .default("pre-activation"),
    /** Set by the provider's check; any value given is replaced. */
    digest: z.string().regex(DIGEST).optional(),
  })
  .strict()
  .refine((k) => (k.content === undefined) !== (k.file === undefined), {
    message: "give exactly one of content (the secret) or file (a path on the deploying machine)",
  });

export const keysSchema = z
  .record(z.string(), keySchema)
  .superRefine((keys, ctx) => {
    for (const name of Object.keys(keys)) {
      if (!KEY_NAME.test(name)) ctx.addIssue({ code: "custom", path: [name], message: "key names are file names: letters, digits, '.', '_' and '-', not starting with '.' or '-'" });
    }
  })
  .default({});

export type KeyInput = z.input<typeof keySchema>;
export type KeySpec = z.output<typeof keySchema>;
export type KeysSpec = z.output<typeof keysSchema>;

/** Where a key is written on the machine. */
export function keyPath(name: string, key: Pick<KeySpec, "destDir">): string {
  return `${key.destDir.replace(/\/+$/, "")}/${name}`;
}

/** "0640" and "640" mean the same mode; `stat -c %a` prints the latter. */
export function normalMode(mode: string): string {
  return mode.replace(/^0(?=[0-7]{3}$)/, "");
}
