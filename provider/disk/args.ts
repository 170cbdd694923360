import { z } from "zod";
import { shellQuote } from "../util/shell-quote";

/**
 * disko joins some argument lists with `toString` (so "--pbkdf argon2id" is two words) and
 * passes them to the shell unquoted. We split them the same way, and refuse what a shell
 * would expand instead of guessing.
 */
export const wordListSchema = z
  .array(z.string().regex(/^[^'"`$\\;&|<>(){}\n]*$/, { message: "give plain arguments without quotes or shell characters, e.g. \"--pbkdf argon2id\"" }))
  .default([]);

export function shellWords(args: string[]): string[] {
  return args.flatMap((a) => a.split(/\s+/).filter(Boolean)).map(shellQuote);
}

/** An absolute path (disko's optionTypes.absolute-pathname). */
export const absolutePath = (example: string) =>
  z.string().regex(/^\/[^\0]*$/, { message: `give an absolute path, e.g. "${example}"` });
