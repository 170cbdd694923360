import { z } from "zod";
import { binaryCacheSchema } from "./binary-cache";
import { connectionSchema } from "./connection";
import { FLAKE_ATTR, STORE_PATH } from "./system-patterns";
import { keysSchema } from "./keys";

const storePathSchema = z
  .string()
  .regex(STORE_PATH, {
    message: "give a store path such as /nix/store/<hash>-nixos-system-<name>-<version>",
  });

/** A value JSON carries into Nix (builtins.fromJSON): string, number, boolean, null, list, object. */
const jsonValueSchema: z.ZodType<unknown> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValueSchema), z.record(z.string(), jsonValueSchema)], {
    error: () => "give a JSON value: a string, number, boolean, null, list or object",
  }),
);

/** Module arguments for the flake's configuration, as nixos-anywhere's Terraform `special_args`. */
export const specialArgsSchema = z.record(z.string().min(1, "a specialArgs name cannot be empty"), jsonValueSchema, {
  error: () => "give specialArgs as an object of module arguments, e.g. { address: vm.ipv4 }",
});

export const systemSchema = z.union(
  [
    z.object({
      flake: z.string().regex(FLAKE_ATTR, {
        message: 'give "<flake path or ref>#<name>" for nixosConfigurations.<name>, e.g. ".#web1"',
      }),
      specialArgs: specialArgsSchema.optional(),
    }).strict(),
    z.object({
      expression: z
        .object({
          file: z.string().min(1, "give the path of a .nix file"),
          attr: z.string().min(1).optional(),
          args: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
        })
        .strict(),
    }).strict(),
    z.object({ storePath: storePathSchema }).strict(),
  ],
  { error: () => "give exactly one of system.flake, system.expression or system.storePath" },
);

/** What NixosHost carries of a DiskLayout: its declared args, rendered again by check. */
export const diskLayoutRefSchema = z.object({ declared: z.record(z.string(), z.unknown()) }).strict();

/** A file's owner or group during the install: a numeric id, or "root". */
function idSchema(what: string) {
  return z
    .union([z.number().int().min(0), z.literal("root")], {
      error: () => `give the ${what} as a numeric id (or "root"): the installed system's users do not exist yet during the install`,
    })
    .default(0);
}

/** The install's phases, in the order they run (as nixos-anywhere's --phases). */
export const INSTALL_PHASES = ["kexec", "disko", "install", "reboot"] as const;
export type InstallPhase = (typeof INSTALL_PHASES)[number];

const phaseSchema = z.enum(INSTALL_PHASES, {
  error: () => `install.phases holds ${INSTALL_PHASES.slice(0, -1).map((p) => `"${p}"`).join(", ")} and/or "${INSTALL_PHASES.at(-1)}"`,
});

export const installSchema = z
  .object({
    phases: z.array(phaseSchema).min(1, "name at least one phase").default([...INSTALL_PHASES]),
    kexecTarball: z.string().min(1, "give the path of a kexec tarball holding kexec/run").optional(),
    extraFiles: z
      .record(
        z.string().regex(/^\/[^\0]*$/, { message: "extraFiles keys are absolute paths on the installed system" }),
        z
          .object({
            content: z.string(),
            /** "base64" for binary content. */
            encoding: z.enum(["utf8", "base64"], { error: () => 'encoding is "utf8" (text, the default) or "base64" (binary)' }).default("utf8"),
            mode: z.string().regex(/^0?[0-7]{3,4}$/, { message: 'give an octal mode such as "0644" or "0600"' }).default("0644"),
            owner: idSchema("owner"),
            group: idSchema("group"),
          })
          .strict()
          .refine((f) => f.encoding !== "base64" || /^[A-Za-z0-9+/]*={0,2}$/.test(f.content.replace(/\s/g, "")), {
            message: "content is not valid base64 (encoding: \"base64\")",
            path: ["content"],
          }),
      )
      .default({}),
    hostKeys: z
      .object({ ed25519: z.object({ privateKey: z.string().min(1), publicKey: z.string().startsWith("ssh-ed25519 ") }).strict() })
      .partial()
      .optional(),
    /** LUKS keys by the keyFile path the layout names; uploaded (0600) before the disko phase. */
    diskKeys: z
      .record(z.string().regex(/^\/[^\0]+$/, { message: "diskKeys keys are the absolute keyFile paths of the layout's luks nodes" }), z.string().min(1, "a disk key cannot be empty"))
      .default({}),
    /**
     * The SSH port the installer listens on after kexec, as nixos-anywhere's
     * --post-kexec-ssh-port: 22 (the installer's sshd), or the forwarded port when the
     * machine is reached through a port forward.
     */
    postKexecSshPort: z.number().int().min(1, "ports run from 1 to 65535").max(65535, "ports run from 1 to 65535").default(22),
    timeouts: z
      .object({
        kexecSeconds: z.number().int().positive().default(300),
        rebootSeconds: z.number().int().positive().default(600),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const switchSchema = z
  .object({
    action: z.enum(["switch", "boot", "test"], { error: () => 'switch.action is one of "switch", "boot", "test"' }).default("switch"),
    rollback: z
      .enum(["magic", "on-failure", "none"], { error: () => 'switch.rollback is one of "magic", "on-failure", "none"' })
      .default("on-failure"),
    confirmTimeoutSeconds: z.number().int().min(5, "give the watchdog at least 5 seconds").default(60),
    healthChecks: z.array(z.string().min(1, "a health check is a shell command")).default([]),
    /** Reboot when the new system boots another kernel, initrd or module set (or init). */
    rebootOnKernelChange: z.boolean().default(false),
    rebootTimeoutSeconds: z.number().int().positive().default(600),
    timeoutSeconds: z.number().int().positive().default(600),
    /**
     * Install the bootloader again (NIXOS_INSTALL_BOOTLOADER=1, nixos-rebuild's
     * --install-bootloader). Optional without a default: the states of earlier versions,
     * which lack it, compare equal.
     */
    installBootloader: z.boolean().optional(),
  })
  .strict()
  .refine((s) => !(s.installBootloader && s.action === "test"), {
    message: 'switch.installBootloader goes with action "switch" or "boot": "test" writes no boot entry',
    path: ["installBootloader"],
  });

export const buildSchema = z
  .object({
    on: z.enum(["local", "target"], { error: () => 'build.on is "local" or "target"' }).default("local"),
  })
  .strict();

export const copySchema = z
  .object({
    compress: z
      .enum(["auto", "zstd", "gzip", "none"], {
        error: () => 'copy.compress is one of "auto" (compress when the link measures slow), "zstd", "gzip", "none"',
      })
      .default("auto"),
  })
  .strict();

export const nixosHostSchema = z
  .object({
    connection: connectionSchema,
    system: systemSchema,
    diskLayout: diskLayoutRefSchema.optional(),
    install: installSchema.optional(),
    // prefault: an absent object is parsed as {}, so its fields' own defaults apply.
    switch: switchSchema.prefault({}),
    build: buildSchema.prefault({}),
    binaryCache: binaryCacheSchema.optional(),
    copy: copySchema.prefault({}),
    reinstallTriggers: z.record(z.string(), z.string()).default({}),
    /** Secrets written to the machine as files (owner, group, mode), outside the Nix store. */
    keys: keysSchema,
    /**
     * The stack ("<project>/<stack>", as the refusal names it) that manages the machine now,
     * whose management this resource takes over on purpose.
     */
    takeOver: z.string().min(1, 'give the stack that manages the machine now, as "<project>/<stack>"').optional(),
  })
  .strict()
  .refine((h) => !h.binaryCache || h.build.on === "local", {
    message: 'binaryCache feeds targets what this machine built: set build.on to "local", or drop binaryCache',
    path: ["binaryCache"],
  })
  .refine((h) => !h.install || h.diskLayout || !h.install.phases.includes("disko"), {
    message: "the disko phase needs a diskLayout: pass a DiskLayout, or drop \"disko\" from install.phases",
    path: ["install", "phases"],
  });

export type NixosHostInput = z.input<typeof nixosHostSchema>;
export type NixosHostSpec = z.output<typeof nixosHostSchema>;
export type SystemSpec = z.output<typeof systemSchema>;

/** Each input's default, read from the schema (an install or switch spec left out of a call). */
export const INSTALL_DEFAULTS = installSchema.parse({});
export const SWITCH_DEFAULTS = switchSchema.parse({});
