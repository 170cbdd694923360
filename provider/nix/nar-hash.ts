// NAR hashes as Nix prints them ("sha256-<base64>", "sha256:<nix base32>" or hex) to the
// hex the serve protocol accepts from every Nix version.
const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";

export function narHashHex(hash: string): string {
  const sri = /^sha256-([A-Za-z0-9+/=]+)$/.exec(hash);
  if (sri) return Buffer.from(sri[1]!, "base64").toString("hex");
  const body = hash.replace(/^sha256:/, "");
  if (/^[0-9a-f]{64}$/.test(body)) return body;
  if (body.length === 52) return nixBase32Decode(body, 32).toString("hex");
  throw new Error(`unrecognised NAR hash "${hash}"`);
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
