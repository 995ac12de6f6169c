/**
 * 64-bit fingerprints for the typed-array tables of {@link MemoryReplayStore}, and the keyed
 * mix that places them. @internal
 *
 * - A base64url SHA-256 digest (43 characters: the verifier's replay keys, `SHA-256(jkt.jti)`,
 *   and key thumbprints) is its own fingerprint: its first 64 bits, decoded. Two digests share
 *   them only by chance (2^-64) or by grinding SHA-256 (2^32 work for a pair of the grinder's
 *   own proofs or keys, whose only effect is that one of its own two proofs is refused; a
 *   collision with someone else's digest is a 64-bit second preimage).
 * - Any other string (an account such as `sub:…`, keys of other callers) is reduced with
 *   HalfSipHash-1-3 (Aumasson and Bernstein's SipHash for 32-bit words, the keyed hash Linux
 *   uses for its hash tables) under 64 random bits drawn per store.
 * - Where a fingerprint goes (its home slot, its account bucket) is a keyed mix of all 64 bits,
 *   so nobody without the store's random bits can aim entries at one place: crowding a slot
 *   takes fingerprints equal in all 64 bits, which are one entry anyway.
 */

/** Output of {@link fingerprint64} (two words, kept here to avoid an allocation per call). */
export const fp = { hi: 0, lo: 0 };

/** Length of a base64url SHA-256 digest: the verifier's replay keys and key thumbprints. */
const DIGEST_LENGTH = 43;
const B64URL = new Int8Array(128).fill(-1);
{
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < 64; i++) B64URL[alphabet.charCodeAt(i)] = i;
}

/**
 * Sets `fp` to the first 64 bits of a base64url digest (characters 0-5 and 6-11, 36 bits each,
 * 32 kept), or answers `false` when one of those 12 characters is not base64url. (A key of 43
 * characters is taken as a SHA-256 digest, as the verifier passes: see `useOnce`.)
 */
function decodeDigest(key: string): boolean {
  let bad = 0;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 6; i++) {
    const a = key.charCodeAt(i);
    const b = key.charCodeAt(i + 6);
    const va = a < 128 ? B64URL[a]! : -1;
    const vb = b < 128 ? B64URL[b]! : -1;
    bad |= va | vb;
    hi = (Math.imul(hi, 64) + va) >>> 0;
    lo = (Math.imul(lo, 64) + vb) >>> 0;
  }
  if (bad < 0) return false;
  fp.hi = hi;
  fp.lo = lo;
  return true;
}

/** Murmur3's 32-bit finaliser: a bijection that spreads every input bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A keyed 32-bit mix of a whole fingerprint: where it is placed. */
export function place(hi: number, lo: number, k0: number, k1: number): number {
  return (fmix32(hi ^ k0) ^ fmix32((lo ^ k1) + 0x9e3779b9)) >>> 0;
}

/**
 * Sets `fp` to the keyed 64-bit fingerprint of `key` (HalfSipHash-1-3, 64-bit output); of a
 * base64url SHA-256 digest (43 characters), its first 96 bits. Strings
 * of code units up to 255 (replay keys are base64url digests) are read 4 units a word; others
 * 2 units a word in a separate domain, so no two strings share their input words. (The rounds
 * are written out over local variables: the store calls this on every `useOnce`.)
 */
export function fingerprint64(key: string, k0: number, k1: number): void {
  // (small, so that the common case, a digest, is inlined where the store calls it)
  if (key.length !== DIGEST_LENGTH || !decodeDigest(key)) sipHash(key, k0, k1);
}

/** HalfSipHash-1-3 of a narrow string into `fp` (wide ones go to {@link wideFingerprint}). */
function sipHash(key: string, k0: number, k1: number): void {
  const n = key.length;
  let v0 = k0 | 0;
  let v1 = (k1 ^ 0xee) | 0;
  let v2 = (k0 ^ 0x6c796765) | 0;
  let v3 = (k1 ^ 0x74656462) | 0;
  const whole = n & ~3;
  let units = 0; // every code unit OR-ed: above 0xff, the string goes the wide way
  let i = 0;
  for (; i < whole; i += 4) {
    const a = key.charCodeAt(i);
    const b = key.charCodeAt(i + 1);
    const c = key.charCodeAt(i + 2);
    const d = key.charCodeAt(i + 3);
    units |= a | b | c | d;
    const m = a | (b << 8) | (c << 16) | (d << 24);
    v3 ^= m;
    v0 = (v0 + v1) | 0;
    v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  // the last word: the length's low byte on top, the units left below
  let m = (n & 0xff) << 24;
  for (let s = 0; i < n; i++, s += 8) {
    const c = key.charCodeAt(i);
    units |= c;
    m |= c << s;
  }
  if (units > 0xff) {
    wideFingerprint(key, k0, k1);
    return;
  }
  finish(v0, v1, v2, v3, m);
}

/** The last word's round and the finalisation (d = 3 rounds for each output word). */
function finish(v0: number, v1: number, v2: number, v3: number, m: number): void {
  v3 ^= m;
  v0 = (v0 + v1) | 0;
  v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
  v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0;
  v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
  v0 = (v0 + v3) | 0;
  v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
  v2 = (v2 + v1) | 0;
  v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
  v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m;
  v2 ^= 0xee;
  for (let out = 0; out < 2; out++) {
    for (let r = 0; r < 3; r++) {
      v0 = (v0 + v1) | 0;
      v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
      v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0;
      v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
      v0 = (v0 + v3) | 0;
      v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
      v2 = (v2 + v1) | 0;
      v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
      v2 = (v2 << 16) | (v2 >>> 16);
    }
    if (out === 0) {
      fp.hi = (v1 ^ v3) >>> 0;
      v1 ^= 0xdd;
    } else {
      fp.lo = (v1 ^ v3) >>> 0;
    }
  }
}

/** Strings with a code unit above 0xff: 2 units a word, in a domain of their own. */
function wideFingerprint(key: string, k0: number, k1: number): void {
  const n = key.length;
  let v0 = k0 | 0;
  let v1 = (k1 ^ 0xee) | 0;
  let v2 = (k0 ^ 0x6c796765 ^ 0x77696465) | 0;
  let v3 = (k1 ^ 0x74656462) | 0;
  const pairs = n & ~1;
  let i = 0;
  for (; i < pairs; i += 2) {
    const m = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16);
    v3 ^= m;
    v0 = (v0 + v1) | 0;
    v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  finish(v0, v1, v2, v3, ((n & 0xff) << 24) | (i < n ? key.charCodeAt(i) : 0));
}
