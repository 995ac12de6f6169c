/**
 * 64-bit fingerprints of replay keys and key thumbprints, and a keyed slot mixer, for the
 * typed-array tables of {@link MemoryReplayStore}. @internal
 */

const B64URL = new Int8Array(128).fill(-1);
{
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < 64; i++) B64URL[alphabet.charCodeAt(i)] = i;
}

/** Length of a base64url SHA-256 digest: replay keys and JWK thumbprints. */
const DIGEST_LENGTH = 43;

/** Murmur3's 32-bit finaliser: a bijection that spreads every input bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Output of {@link fingerprint64} (two words, kept here to avoid an allocation per call). */
export const fp = { hi: 0, lo: 0 };

/**
 * Reduces a key to 64 bits in `fp`. A 43-character base64url digest (what the verifier passes)
 * is decoded: its first 12 characters carry 72 uniformly random bits, of which 64 are kept.
 * Anything else is hashed in full with two independently seeded multiplicative hashes, so
 * arbitrary keys remain distinct with overwhelming probability.
 */
export function fingerprint64(key: string, seedA: number, seedB: number): void {
  if (key.length === DIGEST_LENGTH) {
    let hi = 0;
    let lo = 0;
    let ok = true;
    for (let i = 0; i < 6; i++) {
      const a = key.charCodeAt(i);
      const b = key.charCodeAt(i + 6);
      const va = a < 128 ? B64URL[a]! : -1;
      const vb = b < 128 ? B64URL[b]! : -1;
      if ((va | vb) < 0) {
        ok = false;
        break;
      }
      hi = (Math.imul(hi, 64) + va) >>> 0;
      lo = (Math.imul(lo, 64) + vb) >>> 0;
    }
    if (ok) {
      fp.hi = hi;
      fp.lo = lo;
      return;
    }
  }
  let h1 = seedA ^ key.length;
  let h2 = seedB ^ Math.imul(key.length, 0x9e3779b1);
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul((h2 << 5) | (h2 >>> 27), 0x5bd1e995) ^ c;
  }
  fp.hi = fmix32(h1);
  fp.lo = fmix32(h2 ^ h1);
}
