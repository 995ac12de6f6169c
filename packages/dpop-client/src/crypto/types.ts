/**
 * The contract of the internal `#crypto` module. `web.ts` implements it with WebCrypto (every
 * runtime); `node.ts` with `node:crypto` (3-6x faster on Node); `native.ts` (React Native) with
 * WebCrypto where a polyfill installs it and a pure SHA-256 otherwise. Selected by the `node`
 * and `react-native` conditions in package.json `imports`.
 * @internal
 */
import type { DPoPAlgorithm } from '../algorithms.ts';

/** Signs the ASCII JWS signing input with a private `CryptoKey`, returning a JOSE-format signature. */
export declare function signWithCryptoKey(
  alg: DPoPAlgorithm,
  key: CryptoKey,
  signingInput: string,
): Uint8Array | Promise<Uint8Array>;

/** base64url(SHA-256(UTF-8(text))), e.g. `ath` and RFC 7638 thumbprints. */
export declare function sha256Base64url(text: string): string | Promise<string>;

/** base64url of bytes, without padding. */
export declare function base64url(bytes: Uint8Array): string;

/** base64url of the UTF-8 encoding of a string, without padding. */
export declare function base64urlString(text: string): string;

/**
 * A fresh identifier with 128 bits from the CSPRNG, base64url; `undefined` when the runtime has
 * no `crypto.getRandomValues` (the caller then asks the signer, or throws `ERR_DPOP_NO_RANDOM`).
 */
export declare function randomId(): string | undefined;

/** Which implementation is loaded. */
export declare const backend: 'node' | 'web' | 'react-native';
