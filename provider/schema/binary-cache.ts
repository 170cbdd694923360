import { existsSync } from "node:fs";
import { z } from "zod";

const storeUrl = (what: string) =>
  z.string().regex(/^[a-z][a-z0-9+.-]*:\/\/\S+$/, {
    message: `give ${what} as a Nix store URL: https://cache.example.com, s3://bucket?region=eu-west-1, file:///srv/cache`,
  });

/**
 * Targets substitute the closure from a Nix binary cache instead of receiving it from the
 * deployer; the deployer pushes each closure there once per run.
 */
export const binaryCacheSchema = z
  .object({
    /** What the targets substitute from. */
    url: storeUrl("binaryCache.url"),
    /** Where the deployer pushes (`nix copy --to`); defaults to url (e.g. s3:// here, https:// for the targets). */
    pushUrl: storeUrl("binaryCache.pushUrl").optional(),
    /** The key the cache's paths are signed with, trusted by the targets for this substitution. */
    publicKey: z.string().regex(/^[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=$/, {
      message: 'give the cache\'s public key as "name:base64" (the public file nix-store --generate-binary-cache-key wrote)',
    }),
    /** A secret signing key file on the deployer: pushed paths are signed with it. */
    secretKeyFile: z
      .string()
      .min(1)
      .refine((f) => existsSync(f), { message: "the secret key file does not exist on this machine (nix-store --generate-binary-cache-key writes one)" })
      .optional(),
  })
  .strict();

export type BinaryCacheSpec = z.output<typeof binaryCacheSchema>;
