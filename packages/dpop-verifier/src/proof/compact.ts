/**
 * RFC 9449 §4.3 check 2: the `DPoP` header value is a single, well-formed JWT, here a JWS in
 * compact serialisation (RFC 7515 §7.1) of bounded size with three strict base64url segments.
 * @module
 */
import { isStrictBase64url } from '../base64url.ts';
import { refuse } from '../errors.ts';
import type { HeaderEntry, ProofPolicy } from './policy.ts';

/** A proof split into its segments. @internal */
export interface CompactJws {
  /** The whole proof (its first `signed` characters are the JWS signing input). */
  proof: string;
  signed: number;
  header: string;
  payload: string;
  signature: string;
  /** The header's checked entry, when this exact segment passed checks 4, 5 and 7 before. */
  cached: HeaderEntry | undefined;
}

/**
 * Check 2: size (`maxProofLength`), three segments, strict base64url (RFC 7515 §2, no padding).
 * A header segment found in the header cache is byte-identical to one that passed, so it is
 * not scanned again. Synchronous; throws a {@link DPoPError}. @internal
 */
export function splitCompact(policy: ProofPolicy, proof: string): CompactJws {
  if (typeof proof !== 'string' || proof.length === 0) throw refuse('missing_proof');
  if (proof.length > policy.maxProofLength) throw refuse('proof_too_long');
  const d1 = proof.indexOf('.');
  const d2 = d1 < 0 ? -1 : proof.indexOf('.', d1 + 1);
  if (d1 <= 0 || d2 < 0 || proof.indexOf('.', d2 + 1) !== -1)
    throw refuse('proof_malformed', { description: 'The DPoP proof is not a compact JWS' });
  const header = proof.slice(0, d1);
  const payload = proof.slice(d1 + 1, d2);
  const signature = proof.slice(d2 + 1);
  const cached = policy.headers.get(header);
  if (
    !isStrictBase64url(payload) ||
    !isStrictBase64url(signature) ||
    (cached === undefined && !isStrictBase64url(header))
  ) {
    throw refuse('proof_malformed', { description: 'The DPoP proof is not strict base64url' });
  }
  return { proof, signed: d2, header, payload, signature, cached };
}
