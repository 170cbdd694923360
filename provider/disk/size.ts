import { z } from "zod";

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** disko's size format: "100%" (the rest of the disk) or a number with an optional K/M/G/T/P. */
export const sizeSchema = z
  .string()
  .regex(/^(100%|[0-9]+[KMGTP]?)$/, { message: 'give a size like "512M", "20G" or "100%" (the rest of the disk)' });

/** Bytes of a size, or undefined for "100%". */
export function sizeBytes(size: string): number | undefined {
  if (size === "100%") return undefined;
  const match = /^([0-9]+)([KMGTP]?)$/.exec(size);
  return match ? Number(match[1]) * UNITS[match[2] ?? ""]! : undefined;
}
