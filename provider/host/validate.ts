import { utils as sshUtils } from "ssh2";
import { z } from "zod";
import { InputError } from "../errors";
import { fieldIssues } from "../schema/zod-errors";
import { nixosHostSchema, type NixosHostSpec } from "../schema/nixos-host";
import { containsUnknown } from "../util/unknown";

const RESOURCE = "NixosHost";
const FIELDS = ["connection", "system", "diskLayout", "install", "switch", "build", "binaryCache", "reinstallTriggers"] as const;

function inputFields(inputs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of FIELDS) if (inputs[key] !== undefined) out[key] = inputs[key];
  return out;
}

/** Parses fully known inputs, or throws an InputError naming every bad field. */
export function parseHostInputs(inputs: Record<string, unknown>): NixosHostSpec {
  const result = nixosHostSchema.safeParse(inputs ? inputFields(inputs) : inputs);
  const issues = result.success ? [] : fieldIssues(result.error);
  if (result.success) issues.push(...keyIssues(result.data.connection, "connection"));
  if (issues.length > 0) throw new InputError(RESOURCE, issues);
  return result.data as NixosHostSpec;
}

/**
 * During preview some inputs are unknown: validate every top-level field that is fully
 * known, so bad input still fails before `pulumi up` touches anything.
 */
export function checkKnownFields(inputs: Record<string, unknown>): void {
  const shape = nixosHostSchema.shape;
  const issues: { path: string; message: string }[] = [];
  for (const key of FIELDS) {
    const value = inputs[key];
    if (containsUnknown(value)) continue;
    const result = (shape[key] as z.ZodType).safeParse(value);
    if (!result.success) {
      issues.push(...fieldIssues(result.error).map((i) => ({ ...i, path: i.path ? `${key}.${i.path}` : key })));
    }
  }
  if (issues.length > 0) throw new InputError(RESOURCE, issues);
}

/** A private key must parse (with its passphrase) before any connection is tried. */
function keyIssues(connection: NixosHostSpec["connection"], path: string): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  if (connection.privateKey !== undefined) {
    const parsed = sshUtils.parseKey(connection.privateKey, connection.privateKeyPassword);
    if (parsed instanceof Error) {
      const encrypted = /encrypted|passphrase|bad decrypt/i.test(parsed.message);
      issues.push({
        path: `${path}.${encrypted ? "privateKeyPassword" : "privateKey"}`,
        message: encrypted
          ? "the private key is encrypted and privateKeyPassword is missing or wrong"
          : "the private key cannot be read (not an OpenSSH/PEM private key); pass the key file's contents",
      });
    }
  }
  if (connection.proxy) issues.push(...keyIssues({ ...connection.proxy, sudo: false }, `${path}.proxy`));
  return issues;
}
