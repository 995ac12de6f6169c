/**
 * RFC 9449 §4.3 checks 3, 8, 9 and 11 on the payload: the required claims of §4.2 are present
 * and well-formed (3), `htm` is the request method (8), `htu` the request URL without query
 * and fragment (9, compared after normalisation on both sides), and the optional `exp` and
 * `nbf` of RFC 7519 §4.1.4-4.1.5 are honoured (11; `iat` is checked with the nonce, see
 * `freshness.ts`).
 * @module
 */
import { normalizeHtu } from '@popkit/dpop-client';
import { refuse } from '../errors.ts';
import { parseJsonObject } from './json.ts';
import type { ProofPolicy } from './policy.ts';
import type { VerifiedProof } from './types.ts';

/** The proof's claims once checks 3, 8 and 9 passed. @internal */
export type ProofClaims = VerifiedProof['claims'];

/** Longest `htu` compared. */
const MAX_HTU_LENGTH = 8192;

/**
 * The normalised `htu` a proof for this request URL must carry (check 9), cached by URL
 * string. Throws `invalid_url` for a URL that cannot be used. @internal
 */
export function expectedHtu(policy: ProofPolicy, url: string | URL): string {
  const key = typeof url === 'string' ? url : undefined;
  const hit = key === undefined ? undefined : policy.htus.get(key);
  if (hit !== undefined) return hit;
  let normalized: string;
  try {
    normalized = normalizeHtu(url, 'expect.url');
  } catch {
    throw refuse('invalid_url');
  }
  if (key !== undefined && key.length <= 2048) policy.htus.set(key, normalized);
  return normalized;
}

/**
 * Checks 3, 8 and 9: the payload is a JSON object with `htm` equal to `method`, `htu` equal
 * to `htu` once normalised, a bounded `jti` and a numeric `iat`. Synchronous. @internal
 */
export function checkClaims(
  policy: ProofPolicy,
  payload: string,
  method: unknown,
  htu: string,
): ProofClaims {
  const claims = parseJsonObject(payload);
  if (claims === undefined)
    throw refuse('proof_malformed', { description: 'The DPoP proof payload is not a JSON object' });
  const { htm, jti, iat } = claims;
  // 8. htm
  if (typeof htm !== 'string' || htm !== (typeof method === 'string' ? method : ''))
    throw refuse('htm');
  // 9. htu
  const presented = claims.htu;
  if (typeof presented !== 'string' || presented.length > MAX_HTU_LENGTH) throw refuse('htu');
  if (presented !== htu) {
    let normalized: string | undefined;
    try {
      normalized = normalizeHtu(presented);
    } catch {
      normalized = undefined;
    }
    if (normalized !== htu) throw refuse('htu');
  }
  // 3. the other required claims
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > policy.maxJtiLength)
    throw refuse('jti');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw refuse('iat_missing');
  return claims as ProofClaims;
}

/** Check 11, the registered claims: `exp` and `nbf` when present, within `clockTolerance`. @internal */
export function checkValidity(policy: ProofPolicy, claims: ProofClaims, nowSec: number): void {
  const { exp, nbf } = claims;
  const { clockTolerance } = policy;
  if (exp !== undefined && (typeof exp !== 'number' || !(exp + clockTolerance > nowSec)))
    throw refuse('exp');
  if (nbf !== undefined && (typeof nbf !== 'number' || !(nbf - clockTolerance <= nowSec)))
    throw refuse('nbf');
}
