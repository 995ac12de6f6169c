// React Native backend of `#crypto`, selected by the `react-native` condition (Metro, Expo,
// Re.Pack). Hermes has no `crypto.subtle`: SHA-256 (`ath`, thumbprints) falls back to the pure
// implementation in sha256.ts, which only this branch imports, so no browser bundle carries
// it. Keys live in a DPoPSigner (Secure Enclave, Android Keystore); a `CryptoKeyPair` works
// only where a WebCrypto polyfill installs `crypto.subtle`.
import { encodeBase64url, encodeBase64urlString, utf8 } from '../base64url.ts';
import { sha256 } from './sha256.ts';
import type { DPoPAlgorithm } from '../algorithms.ts';
import { randomId, signBytes } from './web.ts';

/** Which implementation is loaded. @internal */
export const backend = 'react-native' as const;

export { randomId };

/** @internal */
export function signWithCryptoKey(
  alg: DPoPAlgorithm,
  key: CryptoKey,
  signingInput: string,
): Promise<Uint8Array> {
  // a fresh copy: a WebCrypto polyfill may read its input after sign() returns
  return signBytes(alg, key, utf8(signingInput));
}

/** @internal */
export function sha256Base64url(text: string): string | Promise<string> {
  const s = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (s === undefined || s === null || typeof s.digest !== 'function') {
    return encodeBase64url(sha256(utf8(text)));
  }
  return s
    .digest('SHA-256', utf8(text) as BufferSource)
    .then((digest) => encodeBase64url(new Uint8Array(digest)));
}

/** @internal */
export const base64url = encodeBase64url;

/** @internal */
export const base64urlString = encodeBase64urlString;
