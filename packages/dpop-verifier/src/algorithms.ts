import type { DPoPAlgorithm } from '@popkit/dpop-client';
import { SUPPORTED_ALGORITHMS } from '@popkit/dpop-client';

/** JWS algorithms a DPoP proof may use: asymmetric only (RFC 9449 §4.2); the client's list. */
export type ProofAlgorithm = DPoPAlgorithm;

/** Every algorithm the verifier can check. */
export const PROOF_ALGORITHMS: readonly ProofAlgorithm[] = SUPPORTED_ALGORITHMS;

/** The default allow-list: the ones clients use (ES256, EdDSA/Ed25519) plus PS256 and RS256. */
export const DEFAULT_ALGORITHMS: readonly ProofAlgorithm[] = Object.freeze([
  'ES256',
  'EdDSA',
  'Ed25519',
  'PS256',
  'RS256',
]);

/** @internal */
export function isProofAlgorithm(value: unknown): value is ProofAlgorithm {
  return typeof value === 'string' && (PROOF_ALGORITHMS as readonly string[]).includes(value);
}
