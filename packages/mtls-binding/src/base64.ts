const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

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

/** Standard-alphabet values only: `-` and `_` are not base64 in PEM, `x5c` or proxy headers. */
const STD_LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) STD_LOOKUP[STD.charCodeAt(i)] = i;

/**
 * Decodes standard base64 (as in PEM, `x5c`, proxy headers): `=` padding allowed at the end only,
 * whitespace ignored; anything else, or more than `maxBytes` bytes, is `undefined`. One pass, no
 * copy of the text, and no further than `maxBytes` allows. @internal
 *
 * @see https://www.rfc-editor.org/rfc/rfc4648#section-4
 */
export function base64Decode(
  text: string,
  maxBytes = Number.POSITIVE_INFINITY,
): Uint8Array | undefined {
  const out = new Uint8Array(Math.min(Math.floor((text.length * 3) / 4), maxBytes + 3));
  let acc = 0;
  let bits = 0;
  let o = 0;
  let chars = 0;
  let pad = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) continue;
    if (code === 0x3d) {
      if (++pad > 2) return undefined;
      continue;
    }
    if (pad > 0) return undefined; // data after padding
    const v = code < 128 ? STD_LOOKUP[code]! : -1;
    if (v < 0) return undefined;
    chars++;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      if (o >= maxBytes) return undefined; // longer than the caller accepts: stop reading
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (chars % 4 === 1) return undefined;
  if (pad > 0 && (chars + pad) % 4 !== 0) return undefined;
  return out.slice(0, o);
}
