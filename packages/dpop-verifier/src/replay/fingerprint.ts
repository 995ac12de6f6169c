/**
 * Keyed 64-bit fingerprints for the typed-array tables of {@link MemoryReplayStore}: every
 * replay key and every account is reduced with HalfSipHash-1-3 (Aumasson and Bernstein's
 * SipHash for 32-bit words, the keyed hash Linux uses for its hash tables) under 64 random key
 * bits drawn per store. Nobody without the key can find two inputs with the same fingerprint,
 * home slot or bucket, so no collision can be precomputed offline and aimed at a server.
 * @internal
 */

/** Output of {@link fingerprint64} (two words, kept here to avoid an allocation per call). */
export const fp = { hi: 0, lo: 0 };

let v0 = 0;
let v1 = 0;
let v2 = 0;
let v3 = 0;

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/** One HalfSipHash round. */
function round(): void {
  v0 = (v0 + v1) | 0;
  v1 = rotl(v1, 5) ^ v0;
  v0 = rotl(v0, 16);
  v2 = (v2 + v3) | 0;
  v3 = rotl(v3, 8) ^ v2;
  v0 = (v0 + v3) | 0;
  v3 = rotl(v3, 7) ^ v0;
  v2 = (v2 + v1) | 0;
  v1 = rotl(v1, 13) ^ v2;
  v2 = rotl(v2, 16);
}

function absorb(m: number): void {
  v3 ^= m;
  round();
  v0 ^= m;
}

/**
 * Sets `fp` to the keyed 64-bit fingerprint of `key` (HalfSipHash-1-3, 64-bit output). Strings
 * of code units up to 255 (replay keys are base64url digests) are read 4 units a word; others
 * 2 units a word in a separate domain, so no two strings share their input words.
 */
export function fingerprint64(key: string, k0: number, k1: number): void {
  const n = key.length;
  v0 = k0;
  v1 = k1 ^ 0xee;
  v2 = k0 ^ 0x6c796765;
  v3 = k1 ^ 0x74656462;
  let i = 0;
  let wide = 0;
  const whole = n & ~3;
  for (; i < whole; i += 4) {
    const a = key.charCodeAt(i);
    const b = key.charCodeAt(i + 1);
    const c = key.charCodeAt(i + 2);
    const d = key.charCodeAt(i + 3);
    if ((a | b | c | d) > 0xff) {
      wide = 1;
      break;
    }
    absorb(a | (b << 8) | (c << 16) | (d << 24));
  }
  let last: number;
  if (wide === 0) {
    last = (n & 0xff) << 24;
    for (let s = 0; i < n; i++, s += 8) {
      const c = key.charCodeAt(i);
      if (c > 0xff) {
        wide = 1;
        break;
      }
      last |= c << s;
    }
  }
  if (wide === 1) {
    // Start again, 2 code units a word, in another domain.
    v0 = k0;
    v1 = k1 ^ 0xee;
    v2 = k0 ^ 0x6c796765 ^ 0x77696465;
    v3 = k1 ^ 0x74656462;
    const pairs = n & ~1;
    for (i = 0; i < pairs; i += 2) absorb(key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16));
    last = ((n & 0xff) << 24) | (i < n ? key.charCodeAt(i) : 0);
  }
  absorb(last!);
  v2 ^= 0xee;
  round();
  round();
  round();
  fp.hi = (v1 ^ v3) >>> 0;
  v1 ^= 0xdd;
  round();
  round();
  round();
  fp.lo = (v1 ^ v3) >>> 0;
}
