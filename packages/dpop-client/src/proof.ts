import { base64url, base64urlString, randomId, sha256Base64url } from '#crypto';
import type { DPoPAlgorithm } from './algorithms.ts';
import { invalidType, invalidValue } from './errors.ts';
import { normalizeMethod, wireHtu } from './htu.ts';
import { resolveProofKey } from './keys.ts';
import type { DPoPKey } from './signer.ts';

/** What the proof is for (RFC 9449 §4.2). */
export interface ProofRequest {
  /** HTTP method; standard methods are upper-cased. */
  method: string;
  /** Absolute http(s) URL; signed as sent on the wire ({@link wireHtu}: query and fragment dropped). */
  url: string | URL;
  /** The access token sent with the request; adds `ath` (RFC 9449 §4.2). */
  accessToken?: string;
  /** The latest `DPoP-Nonce` the server sent (RFC 9449 §8, §9). */
  nonce?: string;
}

/** Optional overrides for {@link createProof}. */
export interface ProofOptions {
  /** Issued-at, in seconds since the epoch. Default: now plus `clockOffset`. */
  iat?: number;
  /** Seconds to add to the local clock (learned from the server's `Date`). Default 0. */
  clockOffset?: number;
  /** Unique identifier; default 128 random bits, base64url. */
  jti?: string;
  /** Extra claims. They cannot override `htm`, `htu`, `iat`, `jti`, `ath` or `nonce`. */
  claims?: Record<string, unknown>;
  /** Header `alg` for Ed25519 keys: `EdDSA` (default, widely accepted) or `Ed25519` (RFC 9864). */
  ed25519Alg?: 'EdDSA' | 'Ed25519';
}

const RESERVED = new Set(['htm', 'htu', 'iat', 'jti', 'ath', 'nonce']);
const NONCE = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // NQCHAR, RFC 9449 §8.1
/** Longest nonce the client will store or send. */
export const MAX_NONCE_LENGTH = 1024;
const MAX_TOKEN_LENGTH = 16384;

// Wire-exact, JSON-encoded htu per URL string: a client calls few URLs, many times.
const htuCache = new Map<string, string>();

function htuClaim(url: string | URL): string {
  if (typeof url === 'string') {
    const hit = htuCache.get(url);
    if (hit !== undefined) return hit;
  }
  const json = JSON.stringify(wireHtu(url, 'request.url'));
  if (typeof url === 'string') {
    if (htuCache.size >= 256) htuCache.delete(htuCache.keys().next().value as string);
    htuCache.set(url, json);
  }
  return json;
}

/** @internal */
export function isValidNonce(nonce: unknown): nonce is string {
  return typeof nonce === 'string' && nonce.length <= MAX_NONCE_LENGTH && NONCE.test(nonce);
}

/**
 * The `ath` claim: base64url SHA-256 of the ASCII access token (RFC 9449 §4.2).
 *
 * @example
 * ```ts
 * await accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU'); // 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export async function accessTokenHash(accessToken: string): Promise<string> {
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    throw invalidType('accessToken', 'a non-empty string');
  }
  return sha256Base64url(accessToken);
}

/**
 * Creates a DPoP proof JWT (RFC 9449 §4.2) for one HTTP request: header
 * `{ typ: 'dpop+jwt', alg, jwk }` (public members only) and claims `htm`, `htu` (normalised),
 * `iat`, `jti` (128 random bits), plus `ath` when an access token is given and `nonce` when one
 * is given. Everything about the key is cached, so a proof costs one signature plus encoding.
 *
 * @example
 * ```ts
 * const proof = await createProof(keyPair, {
 *   method: 'GET',
 *   url: 'https://api.example.com/orders',
 *   accessToken,
 *   nonce,
 * });
 * await fetch('https://api.example.com/orders', {
 *   headers: { authorization: `DPoP ${accessToken}`, dpop: proof },
 * });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export async function createProof(
  key: DPoPKey,
  request: ProofRequest,
  options?: ProofOptions,
): Promise<string> {
  if (request === null || typeof request !== 'object') throw invalidType('request', 'an object');
  const htm = normalizeMethod(request.method, 'request.method');
  const htuJson = htuClaim(request.url);
  const { accessToken, nonce } = request;
  let iat: number;
  let jti: string | undefined;
  let claims: Record<string, unknown> | undefined;
  let headerAlg: DPoPAlgorithm | undefined;
  if (options === undefined) {
    iat = Math.floor(Date.now() / 1000);
    jti = randomId();
  } else {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object');
    const offset = options.clockOffset ?? 0;
    if (!Number.isFinite(offset)) throw invalidType('options.clockOffset', 'a finite number');
    iat = options.iat ?? Math.floor(Date.now() / 1000 + offset);
    if (!Number.isSafeInteger(iat) || iat < 0)
      throw invalidValue('options.iat', 'must be a non-negative integer');
    jti = options.jti;
    if (jti === undefined) jti = randomId();
    else if (typeof jti !== 'string' || jti.length < 16 || jti.length > 256) {
      throw invalidValue('options.jti', 'must be a string of 16 to 256 characters');
    }
    claims = options.claims;
    if (
      claims !== undefined &&
      (claims === null || typeof claims !== 'object' || Array.isArray(claims))
    ) {
      throw invalidType('options.claims', 'an object');
    }
    if (options.ed25519Alg !== undefined) {
      if (options.ed25519Alg !== 'EdDSA' && options.ed25519Alg !== 'Ed25519') {
        throw invalidValue('options.ed25519Alg', 'must be "EdDSA" or "Ed25519"');
      }
      headerAlg = options.ed25519Alg;
    }
  }
  // No CSPRNG in the runtime (React Native without a polyfill): the signer's, or a typed error.
  jti ??= await (await resolveProofKey(key)).randomId();
  let payload = `{"htm":"${htm}","htu":${htuJson},"iat":${iat},"jti":${JSON.stringify(jti)}`;
  if (accessToken !== undefined) {
    if (
      typeof accessToken !== 'string' ||
      accessToken.length === 0 ||
      accessToken.length > MAX_TOKEN_LENGTH
    ) {
      throw invalidType('request.accessToken', 'a non-empty string');
    }
    payload += `,"ath":"${await sha256Base64url(accessToken)}"`;
  }
  if (nonce !== undefined) {
    if (!isValidNonce(nonce))
      throw invalidValue('request.nonce', 'must be a DPoP nonce (RFC 9449 §8.1)');
    payload += `,"nonce":${JSON.stringify(nonce)}`;
  }
  if (claims !== undefined) {
    for (const name of Object.keys(claims)) {
      const value = claims[name];
      if (RESERVED.has(name) || value === undefined) continue;
      payload += `,${JSON.stringify(name)}:${JSON.stringify(value)}`;
    }
  }
  payload += '}';

  const proofKey = await resolveProofKey(key);
  const alg =
    proofKey.alg === 'EdDSA' || proofKey.alg === 'Ed25519'
      ? (headerAlg ?? proofKey.alg)
      : proofKey.alg;
  const signingInput = `${proofKey.header(alg)}.${base64urlString(payload)}`;
  const signature = await proofKey.sign(signingInput);
  return `${signingInput}.${base64url(signature)}`;
}
