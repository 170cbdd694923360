// `nix path-info --json` as each Nix version in use prints it, to what a store needs to
// register a path. Nix < 2.19: a list of objects with "path"; 2.19-2.32, and 2.33+ with
// `--json-format 1`: an object keyed by full store path (2.33+ adds "version" and "storeDir"
// to each entry); 2.33+ with `--json-format 2`: {version: 2, storeDir, info} with entries keyed
// by base name, references and deriver as base names and "ca" as {method, hash}. An invalid
// path is an entry of null (or, before 2.19, "valid": false).
import { atLeast, type NixVersion } from "./nix-version";
import { narHashHex, nixBase32Encode, parseHash } from "./nar-hash";

export interface ClosurePath {
  path: string;
  narSize: number;
}

/** A closure path with what a store needs to register it (the serve protocol's path info). */
export interface PathInfo extends ClosurePath {
  /** SHA-256 of the path's NAR, hex. */
  narHash: string;
  references: string[];
  deriver: string;
  registrationTime: number;
  ultimate: boolean;
  sigs: string[];
  /** The content address as Nix's text form ("fixed:r:sha256:<base32>"), or "". */
  ca: string;
}

interface EntryJson {
  path?: string;
  valid?: boolean;
  narHash: unknown;
  narSize: number;
  references?: string[];
  deriver?: string | null;
  registrationTime?: number | null;
  ultimate?: boolean;
  signatures?: string[];
  ca?: unknown;
}

/** The arguments that ask this Nix for JSON path info: format 2 where Nix has `--json-format` (and warns without it). */
export function pathInfoJsonArgs(version: NixVersion): string[] {
  return atLeast(version, 2, 33) ? ["--json", "--json-format", "2"] : ["--json"];
}

const CA_PREFIX: Record<string, string> = { text: "text:", flat: "fixed:", nar: "fixed:r:", git: "fixed:git:" };

/** A content address, string or format 2's {method, hash}, as Nix's text form the serve protocol reads. */
export function contentAddressText(ca: unknown): string {
  if (ca === null || ca === undefined || ca === "") return "";
  if (typeof ca === "string") return ca;
  const { method, hash } = ca as { method?: unknown; hash?: unknown };
  const prefix = typeof method === "string" ? CA_PREFIX[method] : undefined;
  if (!prefix) throw new Error(`unrecognised content address ${JSON.stringify(ca)}`);
  const parsed = parseHash(hash);
  return `${prefix}${parsed.algorithm}:${nixBase32Encode(parsed.bytes)}`;
}

/** Every entry of `nix path-info --json` output, in any of the formats above. */
export function parsePathInfoJson(text: string): PathInfo[] {
  const parsed = JSON.parse(text) as unknown;
  let storeDir: string | undefined;
  let entries: [string, EntryJson | null][];
  if (Array.isArray(parsed)) {
    entries = (parsed as EntryJson[]).map((e) => [e.path!, e.valid === false ? null : e]);
  } else if (parsed && typeof parsed === "object" && "info" in parsed && typeof (parsed as { version?: unknown }).version === "number") {
    const wrapped = parsed as { version: number; storeDir?: string; info: Record<string, EntryJson | null> };
    if (wrapped.version !== 2) throw new Error(`nix path-info printed JSON format ${wrapped.version}; the provider reads formats 1 and 2`);
    storeDir = wrapped.storeDir ?? "/nix/store";
    entries = Object.entries(wrapped.info);
  } else {
    entries = Object.entries(parsed as Record<string, EntryJson | null>);
  }
  return entries.map(([key, info]) => {
    const path = key.startsWith("/") ? key : `${storeDir}/${key}`;
    if (!info) throw new Error(`${path} is not a valid path in the local Nix store`);
    const dir = storeDir ? `${storeDir}/` : path.slice(0, path.lastIndexOf("/") + 1);
    const full = (p: string) => (p.startsWith("/") ? p : dir + p);
    return {
      path,
      narSize: info.narSize,
      narHash: narHashHex(info.narHash),
      references: (info.references ?? []).map(full),
      deriver: info.deriver ? full(info.deriver) : "",
      registrationTime: info.registrationTime ?? 0,
      ultimate: info.ultimate ?? false,
      sigs: info.signatures ?? [],
      ca: contentAddressText(info.ca),
    };
  });
}
