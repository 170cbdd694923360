// Hashes as Nix prints them — "sha256-<base64>" (SRI), "sha256:<nix base32>", hex, or the JSON
// object some Nix development versions wrote ({algorithm, format, hash}) — to their bytes;
// NAR hashes as the hex the serve protocol accepts from every Nix version.
const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
const SIZES: Record<string, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

export interface HashBytes {
  algorithm: string;
  bytes: Buffer;
}

/** A hash in any form Nix prints one; `algorithm` when the text does not name it. */
export function parseHash(hash: unknown, algorithm?: string): HashBytes {
  if (hash && typeof hash === "object") {
    const { algorithm: algo, format, hash: body } = hash as { algorithm?: unknown; format?: unknown; hash?: unknown };
    if (typeof algo === "string" && typeof body === "string") {
      if (format === "sri") return parseHash(body, algo);
      const size = SIZES[algo];
      if (size === undefined) throw new Error(`unrecognised hash algorithm "${algo}"`);
      if (format === "base16") return { algorithm: algo, bytes: Buffer.from(body, "hex") };
      if (format === "base64") return { algorithm: algo, bytes: Buffer.from(body, "base64") };
      if (format === "nix32" || format === "base32") return { algorithm: algo, bytes: nixBase32Decode(body, size) };
    }
    throw new Error(`unrecognised hash ${JSON.stringify(hash)}`);
  }
  if (typeof hash !== "string") throw new Error(`unrecognised hash ${JSON.stringify(hash)}`);
  const sri = /^(md5|sha1|sha256|sha512)-([A-Za-z0-9+/=]+)$/.exec(hash);
  if (sri) return { algorithm: sri[1]!, bytes: Buffer.from(sri[2]!, "base64") };
  const prefixed = /^(md5|sha1|sha256|sha512):(.*)$/.exec(hash);
  const algo = prefixed?.[1] ?? algorithm;
  const body = prefixed?.[2] ?? hash;
  const size = algo === undefined ? undefined : SIZES[algo];
  if (algo === undefined || size === undefined) throw new Error(`unrecognised hash "${hash}"`);
  if (body.length === size * 2 && /^[0-9a-f]+$/.test(body)) return { algorithm: algo, bytes: Buffer.from(body, "hex") };
  if (body.length === Math.floor((size * 8 - 1) / 5) + 1) return { algorithm: algo, bytes: nixBase32Decode(body, size) };
  if (/^[A-Za-z0-9+/]+=*$/.test(body) && Buffer.from(body, "base64").length === size) return { algorithm: algo, bytes: Buffer.from(body, "base64") };
  throw new Error(`unrecognised hash "${hash}"`);
}

/** A NAR hash (SHA-256) as hex, from any form Nix prints it in. */
export function narHashHex(hash: unknown): string {
  const parsed = parseHash(hash, "sha256");
  if (parsed.algorithm !== "sha256" || parsed.bytes.length !== 32) throw new Error(`unrecognised NAR hash ${JSON.stringify(hash)}`);
  return parsed.bytes.toString("hex");
}

/** Nix's base32: its own alphabet, least significant digit last. */
export function nixBase32Decode(text: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let n = 0; n < text.length; n++) {
    const digit = NIX_BASE32.indexOf(text[text.length - 1 - n]!);
    if (digit < 0) throw new Error(`invalid character in Nix base32 "${text}"`);
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    out[i]! |= (digit << j) & 0xff;
    if (i + 1 < size) out[i + 1]! |= digit >> (8 - j);
  }
  return out;
}

export function nixBase32Encode(bytes: Buffer): string {
  const length = Math.floor((bytes.length * 8 - 1) / 5) + 1;
  let out = "";
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    const c = (bytes[i]! >> j) | (i >= bytes.length - 1 ? 0 : bytes[i + 1]! << (8 - j));
    out += NIX_BASE32[c & 0x1f];
  }
  return out;
}
