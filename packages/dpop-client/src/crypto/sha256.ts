// SHA-256 (FIPS 180-4 §6.2) in plain TypeScript, for runtimes without WebCrypto (React Native's
// Hermes has no `crypto.subtle`). Only the `react-native` branch of `#crypto` (native.ts)
// imports it, so browser, Node, Deno and Workers bundles never carry it. It hashes public data
// only (access tokens for `ath`, JWK thumbprints): no secret flows through it, so it needs no
// constant-time care. Tested against the FIPS 180-4 / NIST CAVP examples in test/sha256.test.ts.

// FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first
// 64 primes.
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// FIPS 180-4 §5.3.3: the initial hash value.
const H0 = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/** SHA-256 digest (32 bytes) of `data`. @internal */
export function sha256(data: Uint8Array): Uint8Array {
  const length = data.length;
  // §5.1.1 padding: 0x80, zeros, then the 64-bit big-endian bit length; a multiple of 64 bytes.
  const blocks = ((length + 8) >>> 6) + 1;
  const padded = new Uint8Array(blocks << 6);
  padded.set(data);
  padded[length] = 0x80;
  const bits = padded.length - 8;
  const high = Math.floor(length / 0x20000000); // length * 8 / 2^32
  const low = (length << 3) >>> 0;
  padded[bits] = high >>> 24;
  padded[bits + 1] = high >>> 16;
  padded[bits + 2] = high >>> 8;
  padded[bits + 3] = high;
  padded[bits + 4] = low >>> 24;
  padded[bits + 5] = low >>> 16;
  padded[bits + 6] = low >>> 8;
  padded[bits + 7] = low;

  const w = new Int32Array(64);
  let h0 = H0[0]!,
    h1 = H0[1]!,
    h2 = H0[2]!,
    h3 = H0[3]!,
    h4 = H0[4]!,
    h5 = H0[5]!,
    h6 = H0[6]!,
    h7 = H0[7]!;
  for (let offset = 0; offset < padded.length; offset += 64) {
    // §6.2.2 step 1: the message schedule.
    for (let t = 0; t < 16; t++) {
      const i = offset + (t << 2);
      w[t] = (padded[i]! << 24) | (padded[i + 1]! << 16) | (padded[i + 2]! << 8) | padded[i + 3]!;
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!;
      const y = w[t - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
    }
    // §6.2.2 steps 2-4: the compression function.
    let a = h0,
      b = h1,
      c = h2,
      d = h3,
      e = h4,
      f = h5,
      g = h6,
      h = h7;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + K[t]! + w[t]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    // §6.2.2 step 4: the intermediate hash value.
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + h) | 0;
  }
  const out = new Uint8Array(32);
  const words = [h0, h1, h2, h3, h4, h5, h6, h7];
  for (let i = 0; i < 8; i++) {
    const v = words[i]!;
    out[i << 2] = v >>> 24;
    out[(i << 2) + 1] = v >>> 16;
    out[(i << 2) + 2] = v >>> 8;
    out[(i << 2) + 3] = v;
  }
  return out;
}
