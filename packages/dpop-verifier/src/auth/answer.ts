/**
 * How the resource server answers (RFC 9449 §7.1, RFC 6750 §3): a refusal becomes one new
 * {@link DPoPError} with `Cache-Control: no-store` and the `WWW-Authenticate` challenge of this
 * server (built here, once, when the request is answered: nothing found on the way is
 * mutated); every outcome is reported to `onResult`.
 * @module
 */
import type { AuthOutcome, AuthResult, OutcomeDetails } from '../auth.ts';
import { wwwAuthenticate } from '../challenge.ts';
import { DPoPError, refuse } from '../errors.ts';
import { tokenClientId, tokenExpiry, tokenScopes } from './scopes.ts';
import { clockSkew, refusalSkew } from '../proof/freshness.ts';
import { explanationOf, logRefusal } from './explain-log.ts';
import type { AuthRun } from './types.ts';

/** The failure, for errors that are not `DPoPError`s, by where they happened. */
function asDPoPError(e: unknown, run: AuthRun): DPoPError {
  if (run.phase === 'certificate')
    // Certificate information the client influences (a proxy header, the presented
    // certificate) that cannot be used: a 401 with a reason, never a 5xx on demand.
    return refuse('certificate_unusable', { cause: e });
  if (e instanceof DPoPError) return e;
  if (run.phase === 'token') return refuse('token_invalid');
  if (run.phase === 'proof') return refuse('proof_malformed');
  return refuse('internal_error', { cause: e });
}

/**
 * The answer to a refused request: the failure's code, reason, description, status and
 * headers, with this server's `Cache-Control` and challenge (none for a `server_error`; one
 * without an error code for a request without credentials). Reported to `onResult`. @internal
 */
export function refused(e: unknown, run: AuthRun): DPoPError {
  const error = asDPoPError(e, run);
  const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...error.headers };
  // refused after its proof passed (scopes, an adapter's rule): the nonce to move to goes along
  const nonce = run.verified?.nextNonce;
  if (nonce !== undefined && headers['DPoP-Nonce'] === undefined) headers['DPoP-Nonce'] = nonce;
  if (error.code !== 'server_error') {
    // (a Bearer request refused because only DPoP is open is told so on DPoP)
    const scheme = error.reason === 'bearer_not_allowed' ? 'DPoP' : run.scheme;
    const withError = error.reason !== 'missing_authorization';
    headers['WWW-Authenticate'] = wwwAuthenticate(
      run.policy.challenge,
      scheme,
      withError ? error : undefined,
    );
  }
  const answer = new DPoPError(error.code, error.reason, error.message, {
    status: error.status,
    headers,
    ...(error.body === undefined ? {} : { body: error.body }),
    ...(error.cause === undefined ? {} : { cause: error.cause }),
  });
  if (error.stack !== undefined) answer.stack = error.stack;
  Object.defineProperty(answer, 'explanation', {
    value: explanationOf(answer, run),
    enumerable: false,
  });
  if (run.policy.explain) logRefusal(answer, run);
  const { onResult } = run.policy;
  if (onResult) {
    const outcome: AuthOutcome = {
      outcome: 'rejected',
      code: answer.code,
      reason: answer.reason,
      status: answer.status,
      endpoint: 'resource',
      durationMs: performance.now() - run.start,
    };
    if (run.scheme) outcome.scheme = run.scheme;
    details(outcome, run, refusalSkew(e) ?? refusalSkew(error));
    safe(() => onResult(outcome));
  }
  return answer;
}

/** The accepted request's result, reported to `onResult`. @internal */
export function accepted(run: AuthRun): AuthResult {
  const { verified } = run;
  let result: AuthResult;
  const claims = run.claims!;
  const granted = { clientId: tokenClientId(claims), scopes: tokenScopes(claims) };
  const expiresAt = tokenExpiry(claims);
  if (expiresAt !== undefined) (granted as { expiresAt?: number }).expiresAt = expiresAt;
  if (verified === undefined) {
    result = { token: run.token, claims, scheme: run.scheme!, headers: {}, ...granted };
  } else {
    run.bound.unshift('jkt');
    const headers: Record<string, string> = {};
    if (verified.nextNonce !== undefined) headers['DPoP-Nonce'] = verified.nextNonce;
    result = {
      token: run.token,
      claims: run.claims!,
      scheme: 'DPoP',
      headers,
      jkt: verified.jkt,
      proof: verified,
      ...granted,
    };
  }
  const { onResult } = run.policy;
  if (onResult) {
    const outcome: AuthOutcome = {
      outcome: 'accepted',
      scheme: result.scheme,
      bound: run.bound,
      endpoint: 'resource',
      durationMs: performance.now() - run.start,
    };
    details(outcome, run, undefined);
    safe(() => onResult(outcome));
  }
  return result;
}

/**
 * Adds the {@link OutcomeDetails} of a request to `out` (one object per outcome): lengths, the
 * proof's `alg` and clock skew once its claims were checked (else `skew`, a freshness
 * refusal's), the store's time and fill.
 */
function details(out: OutcomeDetails, run: AuthRun, skew: number | undefined): void {
  const fill = run.policy.replayFill();
  if (fill !== undefined) out.replayFill = fill;
  if (run.proof !== undefined) out.proofLength = run.proof.length;
  if (run.token !== '') out.tokenLength = run.token.length;
  if (run.storeMs !== undefined) out.storeMs = run.storeMs;
  const proof = run.verified ?? run.prepared?.proof;
  if (proof !== undefined) {
    out.alg = proof.alg;
    out.iatSkew = clockSkew(proof.claims.iat, run.policy.proof.now());
  } else if (skew !== undefined) {
    out.iatSkew = skew;
  }
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // metrics must never break authentication
  }
}
