/**
 * The contract of the internal `#crypto` module: `node.ts` (node:crypto, synchronous, cached
 * KeyObjects) or `web.ts` (WebCrypto: Workers, Deno, Bun, browsers). Inputs are pre-validated
 * by the caller (JWK members, base64url alphabet).
 * @internal
 */
import type { ProofAlgorithm } from '../algorithms.ts';

/** An imported public key; opaque to the core. */
export type VerifyKey = unknown;

/** Imports a validated public JWK; throws on keys the platform refuses (off-curve points...). */
export declare function importPublicJwk(
  alg: ProofAlgorithm,
  jwk: Record<string, string>,
): VerifyKey | Promise<VerifyKey>;

/** Verifies a JWS signature over the ASCII signing input. */
export declare function verifySignature(
  alg: ProofAlgorithm,
  key: VerifyKey,
  signingInput: string,
  signature: Uint8Array,
): boolean | Promise<boolean>;

/** base64url(SHA-256(UTF-8(text))). */
export declare function sha256Base64url(text: string): string | Promise<string>;

/** base64url(HMAC-SHA-256(key, UTF-8(data))). */
export declare function hmacSha256Base64url(
  key: Uint8Array,
  data: string,
): string | Promise<string>;

/** Decodes a base64url segment whose alphabet the caller already checked. */
export declare function decodeBase64url(segment: string): Uint8Array;

/** Decodes a base64url segment to UTF-8 text (alphabet already checked). */
export declare function decodeBase64urlText(segment: string): string;

/** Which implementation is loaded. */
export declare const backend: 'node' | 'web';
