// Stand-in for the `react-native` package as react-native-get-random-values uses it: the
// RNGetRandomValues TurboModule. The Hermes CLI has no native CSPRNG, so the bytes come from a
// seed the test passes in (xorshift128+): a test double for the native module, never for real use.
const seed = globalThis.__popkitTestSeed;
let s0 = seed[0] >>> 0 || 1;
let s1 = seed[1] >>> 0 || 2;
let s2 = seed[2] >>> 0 || 3;
let s3 = seed[3] >>> 0 || 4;
function next() {
  const t = s0 ^ (s0 << 11);
  s0 = s1;
  s1 = s2;
  s2 = s3;
  s3 = (s3 ^ (s3 >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
  return s3;
}
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function base64(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const v = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += ALPHABET[v >> 18] + ALPHABET[(v >> 12) & 63];
    out += i + 1 < bytes.length ? ALPHABET[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.length ? ALPHABET[v & 63] : '=';
  }
  return out;
}
const RNGetRandomValues = {
  getRandomBase64(length) {
    const bytes = [];
    for (let i = 0; i < length; i++) bytes.push(next() & 255);
    return base64(bytes);
  },
};
export const TurboModuleRegistry = {
  getEnforcing(name) {
    if (name !== 'RNGetRandomValues') throw new Error(`no native module ${name}`);
    return RNGetRandomValues;
  },
};
