const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  LOOKUP[STD.charCodeAt(i)] = i;
  LOOKUP[URL.charCodeAt(i)] = i;
}

/** base64url without padding. @internal */
export function base64urlEncode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += URL[v >> 18]! + URL[(v >> 12) & 63]! + URL[(v >> 6) & 63]! + URL[v & 63]!;
  }
  const rest = bytes.length - i;
  if (rest > 0) {
    const v = (bytes[i]! << 16) | ((rest > 1 ? bytes[i + 1]! : 0) << 8);
    out += URL[v >> 18]! + URL[(v >> 12) & 63]! + (rest > 1 ? URL[(v >> 6) & 63]! : '');
  }
  return out;
}

/**
 * Decodes standard base64 (as in PEM, `x5c`, proxy headers): `=` padding allowed at the end only,
 * whitespace ignored; anything else is `undefined`. @internal
 */
export function base64Decode(text: string): Uint8Array | undefined {
  let clean = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
    clean += c;
  }
  const unpadded = clean.replace(/={1,2}$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  if (clean.length !== unpadded.length && clean.length % 4 !== 0) return undefined;
  const out = new Uint8Array(Math.floor((unpadded.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < unpadded.length; i++) {
    const code = unpadded.charCodeAt(i);
    const v = code < 128 ? LOOKUP[code]! : -1;
    if (v < 0 || unpadded[i] === '-' || unpadded[i] === '_') return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}
