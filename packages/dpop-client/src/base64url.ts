const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// Hermes before React Native 0.74 has no TextEncoder: a small encoder stands in there.
const encoder = typeof TextEncoder === 'function' ? new TextEncoder() : undefined;

// Uint8Array.prototype.toBase64 (Chromium 140+, Firefox 133+, Safari 18.2+, Deno, Bun): a flat
// string in one native call. Strings built by `+=` below are ropes of ~100 pieces that every
// later use (TextEncoder, the header value) flattens again, a third of a proof's JS in Chromium.
type ToBase64 = (this: Uint8Array, options: { alphabet: string; omitPadding: boolean }) => string;
const toBase64 = (Uint8Array.prototype as { toBase64?: ToBase64 }).toBase64;
const URL_SAFE = { alphabet: 'base64url', omitPadding: true };

/** base64url without padding (RFC 4648 §5), without `Buffer` or `btoa`. @internal */
export function encodeBase64url(bytes: Uint8Array): string {
  if (typeof toBase64 === 'function') return toBase64.call(bytes, URL_SAFE);
  let out = '';
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out +=
      ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + ALPHABET[v & 63]!;
  }
  if (i < n) {
    const a = bytes[i]!;
    const b = i + 1 < n ? bytes[i + 1]! : 0;
    const v = (a << 16) | (b << 8);
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]!;
    if (i + 1 < n) out += ALPHABET[(v >> 6) & 63]!;
  }
  return out;
}

/** UTF-8 encode then base64url. @internal */
export function encodeBase64urlString(text: string): string {
  return encodeBase64url(utf8(text, true));
}

// encodeInto a reused buffer: TextEncoder.encode costs 5 us a call in Chromium (a new
// ArrayBuffer from Blink), encodeInto 2 us; Deno 1.5 vs 0.3 us.
let scratch = new Uint8Array(1024);

/**
 * UTF-8 bytes of a string (lone surrogates become U+FFFD, as `TextEncoder`). `transient`: a
 * view of a shared buffer, valid until the next call (for bytes consumed at once); otherwise a
 * fresh array. @internal
 */
export function utf8(text: string, transient = false): Uint8Array {
  if (encoder !== undefined) {
    const need = text.length * 3;
    if (need > 65536 || typeof encoder.encodeInto !== 'function') return encoder.encode(text);
    if (scratch.length < need) scratch = new Uint8Array(need);
    const { written } = encoder.encodeInto(text, scratch);
    return transient ? scratch.subarray(0, written) : scratch.slice(0, written);
  }
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out.push(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else c = 0xfffd;
    }
    if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else
      out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}
