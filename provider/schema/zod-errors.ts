import type { z } from "zod";
import { InputError } from "../errors";

/** Turns zod issues into field-path messages ("connection.port: ..."). */
export function fieldIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".").replace(/\.\[/g, "["),
    message: issue.message,
  }));
}

/** Parses or throws an InputError naming every bad field. */
export function parseInputs<T extends z.ZodType>(resource: string, schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InputError(resource, fieldIssues(result.error));
  return result.data;
}
