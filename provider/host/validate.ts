import { utils as sshUtils } from "ssh2";
import { z } from "zod";
import { InputError, type FieldIssue } from "../errors";
import { schemaIssues, unknownFieldMessage } from "../schema/zod-errors";
import { nixosHostSchema, type NixosHostSpec } from "../schema/nixos-host";
import { containsUnknown } from "../util/unknown";

const RESOURCE = "NixosHost";
const FIELDS = ["connection", "system", "diskLayout", "install", "switch", "build", "binaryCache", "copy", "reinstallTriggers", "takeOver"] as const;
/** Keys the resource class or the provider adds next to the user's inputs. */
const INTERNAL = new Set(["__provider", "__resourceName", "resourceName", "__stack", "stack", "__urn", "managedBy", "evaluation", "derivation", "toplevel", "layoutHash", "currentSystem", "bootedSystem", "generation", "hostKey", "installedHostKey", "kernel", "stateVersion", "deployedToplevel"]);

function inputFields(inputs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of FIELDS) if (inputs[key] !== undefined) out[key] = inputs[key];
  return out;
}

/** Parses fully known inputs, or throws an InputError naming every bad field. */
export function parseHostInputs(inputs: Record<string, unknown>): NixosHostSpec {
  const fields = inputs ? inputFields(inputs) : inputs;
  const result = nixosHostSchema.safeParse(fields);
  const issues = result.success ? [] : schemaIssues(nixosHostSchema, fields);
  if (result.success) issues.push(...keyIssues(result.data.connection, "connection"), ...hostKeyIssues(result.data.install?.hostKeys?.ed25519));
  if (issues.length > 0) throw new InputError(RESOURCE, issues);
  return result.data as NixosHostSpec;
}

/**
 * What `check` reports: fields the resource does not have ("did you mean"), and every
 * fully known field validated, so bad input fails during preview even while other inputs
 * are still unknown.
 */
export function hostInputIssues(inputs: Record<string, unknown>): FieldIssue[] {
  const shape = nixosHostSchema.shape;
  const issues: FieldIssue[] = [];
  for (const key of Object.keys(inputs)) {
    if (!(FIELDS as readonly string[]).includes(key) && !INTERNAL.has(key) && inputs[key] !== undefined) {
      issues.push({ path: key, message: unknownFieldMessage(key, FIELDS) });
    }
  }
  for (const key of FIELDS) {
    const value = inputs[key];
    if (containsUnknown(value)) continue;
    issues.push(...schemaIssues(shape[key] as z.ZodType, value, [key]));
  }
  if (issues.length === 0 && !containsUnknown(inputs)) {
    try {
      parseHostInputs(inputs);
    } catch (err) {
      if (err instanceof InputError) issues.push(...err.issues);
      else throw err;
    }
  }
  return issues;
}

/**
 * A pre-generated host key must be what sshd can load (unencrypted, ed25519) and its public
 * key the one pinned after the reboot. The messages never quote the keys.
 */
function hostKeyIssues(key: { privateKey: string; publicKey: string } | undefined): FieldIssue[] {
  if (!key) return [];
  const path = "install.hostKeys.ed25519";
  const parsed = sshUtils.parseKey(key.privateKey);
  if (parsed instanceof Error || Array.isArray(parsed)) {
    const encrypted = parsed instanceof Error && /encrypted|passphrase|bad decrypt/i.test(parsed.message);
    return [{
      path: `${path}.privateKey`,
      message: encrypted
        ? "the host key is encrypted: sshd cannot load an encrypted host key; give it without a passphrase (ssh-keygen -t ed25519 -N '')"
        : "the host key cannot be read (not an OpenSSH/PEM private key); pass the contents of the ssh_host_ed25519_key file",
    }];
  }
  if (parsed.type !== "ssh-ed25519") return [{ path: `${path}.privateKey`, message: `this is a ${parsed.type} key; give an ed25519 key (ssh-keygen -t ed25519 -N '')` }];
  const [, base64] = key.publicKey.trim().split(/\s+/);
  if (!base64 || !Buffer.from(base64, "base64").equals(parsed.getPublicSSH())) {
    return [{ path: `${path}.publicKey`, message: "the public key does not belong to privateKey; give the matching .pub line (ssh-keygen -y -f <private key file>)" }];
  }
  return [];
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
