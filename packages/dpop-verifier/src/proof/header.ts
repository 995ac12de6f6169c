/**
 * RFC 9449 §4.3 checks 4, 5 and 7, on the JOSE header: `typ` is `dpop+jwt` (4), `alg` an
 * allowed asymmetric algorithm (5), no `crit` or `b64` (RFC 7515 §4.1.11, RFC 7797), and `jwk`
 * a public key of the type `alg` needs, without private members (7), that the platform imports.
 * @module
 */
import { importPublicJwk, sha256Base64url } from '#crypto';
import type { ProofAlgorithm } from '../algorithms.ts';
import { refuse } from '../errors.ts';
import { checkProofJwk } from '../jwk.ts';
import { parseJsonObject } from './json.ts';
import type { HeaderEntry, ProofPolicy } from './policy.ts';

/** RFC 7518 §3.4, RFC 8037 §3.1: fixed signature lengths in bytes (RSA: the modulus). */
const SIGNATURE_LENGTH: Partial<Record<ProofAlgorithm, number>> = {
  ES256: 64,
  ES384: 96,
  ES512: 132,
  EdDSA: 64,
  Ed25519: 64,
};
/** Longer header segments are checked every time, never cached. */
const MAX_HEADER_CACHE_SEGMENT = 4096;
/** RFC 7515 §4.1.9: "application/dpop+jwt" is the same media type (names are case-insensitive). */
const DPOP_TYP = /^(?:application\/)?dpop\+jwt$/i;

/**
 * Checks 4, 5 and 7 on a header segment not found in the cache, imports its key (cached by
 * algorithm and key: a WebCrypto key is bound to one algorithm, so an RS256 proof must not
 * poison the cache for the same key's PS256 proofs) and caches the result by segment.
 * Asynchronous (key import, thumbprint); rejects with a {@link DPoPError}. @internal
 */
export async function checkHeader(policy: ProofPolicy, segment: string): Promise<HeaderEntry> {
  const header = parseJsonObject(segment);
  if (header === undefined)
    throw refuse('proof_malformed', { description: 'The DPoP proof header is not a JSON object' });
  // 4. typ
  if (typeof header.typ !== 'string' || !DPOP_TYP.test(header.typ)) throw refuse('typ');
  // 5. alg: allowed by policy (asymmetric only, never "none" or HMAC)
  const alg = header.alg;
  if (typeof alg !== 'string' || !policy.allowed.has(alg)) throw refuse('alg');
  if (header.crit !== undefined) throw refuse('crit');
  // RFC 7797 unencoded payloads need "crit", which is refused: a lone b64 is refused too.
  if (header.b64 !== undefined) throw refuse('b64');
  // 7. jwk: a public key of the type alg needs
  const checked = checkProofJwk(alg as ProofAlgorithm, header.jwk, policy.maxRsaBits);
  if (typeof checked === 'string')
    throw refuse('jwk', { description: `Invalid DPoP proof key: ${checked}` });
  const cacheKey = `${alg}.${checked.canonical}`;
  let key = policy.keys.get(cacheKey);
  if (key === undefined) {
    try {
      key = await importPublicJwk(alg as ProofAlgorithm, checked.members);
    } catch (cause) {
      throw refuse('jwk', {
        description: 'Invalid DPoP proof key: the key could not be imported',
        cause,
      });
    }
    policy.keys.set(cacheKey, key);
  }
  const entry: HeaderEntry = {
    alg: alg as ProofAlgorithm,
    key,
    jkt: await sha256Base64url(checked.canonical),
    jwk: checked.members,
    signatureLength:
      SIGNATURE_LENGTH[alg as ProofAlgorithm] ?? Math.floor((checked.members.n!.length * 6) / 8),
  };
  if (segment.length <= MAX_HEADER_CACHE_SEGMENT) policy.headers.set(segment, entry);
  return entry;
}
