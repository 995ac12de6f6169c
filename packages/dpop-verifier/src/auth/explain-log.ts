/**
 * `explain: 'log'`: one `console.warn` line per refused request, naming the failing RFC 9449
 * §4.3 check and the reason, with fingerprints only (hash prefixes of the proof and the token,
 * the token's `cnf.jkt` thumbprint): never a token, proof or key. Enough to find the request
 * again and run `popkit explain` (`@popkit/explain`) on it.
 * @module
 */
import { sha256Base64url } from '#crypto';
import type { DPoPError, DPoPExplanation, DPoPRejectReason } from '../errors.ts';
import type { AuthRun } from './types.ts';

/** The RFC 9449 §4.3 check (or the binding / request step) each proof-related reason fails. */
const CHECK: Partial<Record<DPoPRejectReason, string>> = {
  missing_proof: 'check 1',
  multiple_proofs: 'check 1',
  proof_too_long: 'check 2',
  proof_malformed: 'check 2',
  crit: 'check 2',
  b64: 'check 2',
  jti: 'check 3',
  iat_missing: 'check 3',
  typ: 'check 4',
  alg: 'check 5',
  signature: 'check 6',
  jwk: 'check 7',
  htm: 'check 8',
  htu: 'check 9',
  nonce_missing: 'check 10',
  nonce_invalid: 'check 10',
  nonce_malformed: 'check 10',
  iat_too_old: 'check 11',
  iat_in_future: 'check 11',
  iat_before_restart: 'check 11',
  exp: 'check 11',
  nbf: 'check 11',
  ath_missing: 'check 12 (ath)',
  ath_mismatch: 'check 12 (ath)',
  jkt_mismatch: 'check 12 (cnf.jkt)',
  replay: 'replay (§11.1)',
  downgrade: 'binding (scheme)',
  token_not_bound: 'binding (scheme)',
  bearer_not_allowed: 'binding (scheme)',
  cnf_malformed: 'binding (cnf)',
  cnf_unknown: 'binding (cnf)',
  certificate_missing: 'binding (certificate)',
  certificate_mismatch: 'binding (certificate)',
  certificate_unusable: 'binding (certificate)',
  insufficient_scope: 'scope',
  token_in_query: 'request',
  token_in_body: 'request',
};

const prefix = (hash: string): string => `sha256:${hash.slice(0, 12)}`;

/** `DPoPError.explanation` for a refusal: the failing check and fingerprints. @internal */
export function explanationOf(error: DPoPError, run: AuthRun): DPoPExplanation {
  const explanation: DPoPExplanation = {
    check: CHECK[error.reason] ?? (error.reason.startsWith('token_') ? 'access token' : 'request'),
    reason: error.reason,
    code: error.code,
    status: error.status,
  };
  if (run.scheme !== undefined) explanation.scheme = run.scheme;
  if (run.token !== '' && typeof run.tokenHash === 'string')
    explanation.token = prefix(run.tokenHash);
  if (run.jkt !== undefined) explanation.jkt = run.jkt;
  return explanation;
}

/** Logs one refused request (never throws: logging must not break authentication). @internal */
export function logRefusal(error: DPoPError, run: AuthRun): void {
  try {
    const e = error.explanation ?? explanationOf(error, run);
    const parts = [
      `popkit: ${e.scheme ?? 'request'} refused at ${e.check}: reason ${e.reason} (${e.code}, ${e.status})`,
    ];
    if (e.token !== undefined) parts.push(`token ${e.token}`);
    if (e.jkt !== undefined) parts.push(`cnf.jkt ${e.jkt}`);
    const write = (proofHash?: string) => {
      if (proofHash !== undefined) parts.push(`proof ${prefix(proofHash)}`);
      console.warn(
        `${parts.join('; ')}. Run \`popkit explain\` on the request to see every check.`,
      );
    };
    const proof = run.proof;
    if (proof === undefined || proof.length === 0 || proof.length > 65536) return write();
    const hash = sha256Base64url(proof);
    if (typeof hash === 'string') write(hash);
    else hash.then(write, () => write());
  } catch {
    // never break authentication
  }
}
