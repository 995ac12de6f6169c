import type { AuthOutcome, OutcomeDetails } from './auth.ts';
import { DPOP_CORS_EXPOSE_VALUE } from './cors.ts';
import type { DPoPRejectReason } from './errors.ts';
import { DPoPConfigError, DPoPError, refuse } from './errors.ts';
import type { OptionNames } from './options.ts';
import { rejectUnknownOptions } from './options.ts';
import { dpopHeader } from './proof/field.ts';
import { clockSkew, refusalSkew } from './proof/freshness.ts';
import { compileProofPolicy } from './proof/policy.ts';
import { PROOF_OPTION_NAMES } from './proof/types.ts';
import type { RequestLike } from './request.ts';
import type { PublicUrlOptions } from './request.ts';
import { createUrlResolver, requireUrlTrust } from './request.ts';
import { timingSafeEqual } from './timing-safe.ts';
import type { UpstreamListener } from './upstream.ts';
import type { PreparedProof, VerifiedProof, VerifyProofOptions } from './verify-proof.ts';
import { proofVerifierOf } from './verify-proof.ts';

/** Options of {@link createTokenRequestVerifier}. */
export interface TokenRequestOptions
  extends VerifyProofOptions, Omit<PublicUrlOptions, 'publicUrl'> {
  /**
   * The token endpoint URL as clients address it (its `htu`). Required, unless `allowedHosts`
   * lists the hosts a request-derived URL may name (or, in development only,
   * `dangerouslyTrustRequestUrl`).
   */
  tokenEndpoint?: string;
  /** When true (default), a request without a `DPoP` header is an error; else it resolves `undefined`. */
  required?: boolean;
  /**
   * Called once per token request with the typed outcome (`endpoint: 'token'`), for metrics:
   * when the proof is refused, or once `commit` recorded it (or refused it as a replay). A
   * prepared proof never committed (the grant failed) is not reported. What it throws is
   * ignored.
   */
  onResult?: (outcome: AuthOutcome) => void;
  /**
   * Accepted so that one telemetry object (`dpopTelemetry()`) fits both factories; the token
   * endpoint makes no calls to an authorization server, so it is never called here.
   */
  onUpstream?: UpstreamListener;
}

/** The names of {@link TokenRequestOptions}, for the unknown-option check. @internal */
export const TOKEN_REQUEST_OPTION_NAMES = {
  ...PROOF_OPTION_NAMES,
  allowedHosts: true,
  trustProxy: true,
  dangerouslyTrustRequestUrl: true,
  tokenEndpoint: true,
  required: true,
  onResult: true,
  onUpstream: true,
} as const satisfies OptionNames<TokenRequestOptions>;

/** Per-request inputs of a token request check. */
export interface TokenRequestContext {
  /** `dpop_jkt` from the authorization request (RFC 9449 §10), for the code it issued. */
  dpopJkt?: string;
  /** The `cnf.jkt` of the refresh token being used, for a DPoP-bound refresh token (RFC 9449 §5). */
  boundJkt?: string;
  /**
   * The authenticated client (its `client_id`), the replay store's unit of fairness, in the
   * one-call form (with `prepare`, pass it to `commit`). Default: the proof key.
   */
  account?: string;
}

/** The result at the token endpoint: put `jkt` in the issued token's `cnf` and answer `token_type: DPoP`. */
export interface TokenRequestResult {
  jkt: string;
  proof: VerifiedProof;
  /**
   * Headers to add to the token response: a fresh `DPoP-Nonce` when due, with
   * `Access-Control-Expose-Headers` listing {@link DPOP_CORS_EXPOSE_HEADERS} (`DPoP-Nonce`,
   * `WWW-Authenticate`, `Date`) so a browser client can read them. Merge that one into the
   * response's existing list with {@link mergeExposeHeaders} rather than setting it: set as it
   * is, it would replace what your CORS middleware exposes. (`DPoPError.headers` of the token
   * endpoint's refusals carry the same list.)
   */
  headers: Record<string, string>;
}

function asTokenEndpointError(error: DPoPError): DPoPError {
  // RFC 9449 §5 and §8: 400 with a JSON body at the token endpoint.
  const code =
    error.code === 'use_dpop_nonce' || error.code === 'server_error'
      ? error.code
      : 'invalid_dpop_proof';
  const out = new DPoPError(code, error.reason, error.message, {
    status: code === 'server_error' ? 503 : 400,
    headers: {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
      ...error.headers,
      // the full list: a browser client reads the nonce, and `Date` to correct its clock
      'Access-Control-Expose-Headers': DPOP_CORS_EXPOSE_VALUE,
    },
    body: JSON.stringify({ error: code, error_description: error.message }),
    cause: error,
  });
  return out;
}

/** A refusal of the token request (made a token-endpoint answer by `shaped`). */
function fail(reason: DPoPRejectReason, description?: string): DPoPError {
  return refuse(reason, description === undefined ? undefined : { description });
}

const REFRESH_BINDING = 'The DPoP proof key does not match the refresh token binding';

/**
 * A token-request proof that passed every check and is not yet recorded. Call `commit()` once
 * client authentication and grant validation have succeeded: it records the proof's `jti` and
 * rejects with a ready 400 (`invalid_dpop_proof`, a replay) or 503 answer.
 */
export interface PreparedTokenRequest extends TokenRequestResult {
  /**
   * Records the proof. `account`: the authenticated client (its `client_id`), the replay
   * store's unit of fairness, so one client's flood cannot squeeze the others (default: the
   * proof key).
   */
  commit(options?: { account?: string }): Promise<void>;
}

/** The check built by {@link createTokenRequestVerifier}. */
export interface TokenRequestVerifier {
  /** One call: checks the proof and records it at once. Resolves `undefined` when optional and absent. */
  (request: RequestLike, context?: TokenRequestContext): Promise<TokenRequestResult | undefined>;
  /**
   * Two-phase (recommended): checks the proof and records nothing, so requests that then fail
   * client authentication or grant validation, and anonymous floods, never fill the replay
   * store. Resolves `undefined` when optional and absent.
   */
  prepare(
    request: RequestLike,
    context?: TokenRequestContext,
  ): Promise<PreparedTokenRequest | undefined>;
}

/**
 * Builds the authorization-server check of a token request's DPoP proof (RFC 9449 §5): exactly
 * one `DPoP` header, every proof check of `createProofVerifier` (no `ath`: there is no access
 * token yet), the authorization request's `dpop_jkt` and a bound refresh token's `jkt` (both
 * compared before the signature is checked). Errors are ready 400 JSON answers
 * (`invalid_dpop_proof` or `use_dpop_nonce`, with `DPoP-Nonce`), or 503 when the replay store
 * cannot answer.
 *
 * Use `prepare` and `commit` in this order: check the proof, authenticate the client, validate
 * the grant, then `commit()` (which records the `jti`), then issue the token. A rejected grant, a
 * failed client authentication or a `dpop_jkt` mismatch then never burns a `jti`, and
 * anonymous callers cannot fill the replay store.
 *
 * @example
 * ```ts
 * const checkDPoP = createTokenRequestVerifier({ tokenEndpoint: 'https://as.example.com/token', replay, nonces });
 * const dpop = await checkDPoP.prepare(request, { dpopJkt: code.dpopJkt });
 * await authenticateClient(request); // and validate the grant
 * await dpop.commit();               // records the jti; throws on a replay
 * // issue the access token with cnf: { jkt: dpop.jkt } and token_type "DPoP"
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5
 */
export function createTokenRequestVerifier(options: TokenRequestOptions): TokenRequestVerifier {
  if (options !== null && typeof options === 'object')
    rejectUnknownOptions(options, TOKEN_REQUEST_OPTION_NAMES, 'createTokenRequestVerifier');
  const verifier = proofVerifierOf(compileProofPolicy(options));
  const required = options.required ?? true;
  requireUrlTrust(
    {
      ...options,
      ...(options.tokenEndpoint === undefined ? {} : { publicUrl: options.tokenEndpoint }),
    },
    'tokenEndpoint',
  );
  const resolveUrl = createUrlResolver(
    options.tokenEndpoint === undefined ? options : { publicUrl: () => options.tokenEndpoint! },
  );
  if (options.tokenEndpoint !== undefined) {
    try {
      new URL(options.tokenEndpoint);
    } catch {
      throw new DPoPConfigError('tokenEndpoint', 'must be an absolute URL');
    }
  }
  const { onResult, onUpstream } = options;
  if (onResult !== undefined && typeof onResult !== 'function')
    throw new DPoPConfigError('onResult', 'must be a function');
  if (onUpstream !== undefined && typeof onUpstream !== 'function')
    throw new DPoPConfigError('onUpstream', 'must be a function');
  const clock = options.now ?? Date.now;
  const shape = (e: unknown): DPoPError =>
    asTokenEndpointError(e instanceof DPoPError ? e : refuse('proof_malformed'));
  /** The token-endpoint answer to a failure, reported to `onResult` (when `start` is set). */
  const shaped = (e: unknown, report?: TokenReport): DPoPError => {
    const error = shape(e);
    if (onResult !== undefined && report !== undefined) {
      const outcome: AuthOutcome = {
        outcome: 'rejected',
        code: error.code,
        reason: error.reason,
        status: error.status,
        ...tokenDetails(report, clock),
      };
      if (report.proofLength !== undefined) outcome.scheme = 'DPoP';
      const skew = refusalSkew(e);
      if (skew !== undefined && outcome.iatSkew === undefined) outcome.iatSkew = skew;
      reportSafely(onResult, outcome);
    }
    return error;
  };

  const prepare = async (
    request: RequestLike,
    context: TokenRequestContext = {},
  ): Promise<PreparedTokenRequest | undefined> => {
    const report: TokenReport | undefined =
      onResult === undefined ? undefined : newReport(performance.now());
    let value: string | undefined;
    try {
      value = dpopHeader(request); // RFC 9449 §4.3 check 1
    } catch (e) {
      throw shaped(e, report);
    }
    if (value === undefined) {
      if (!required && context.boundJkt === undefined && context.dpopJkt === undefined)
        return undefined;
      throw shaped(fail('missing_proof'), report);
    }
    if (report !== undefined) report.proofLength = value.length;
    const { dpopJkt, boundJkt } = context;
    if (dpopJkt !== undefined && boundJkt !== undefined && !timingSafeEqual(dpopJkt, boundJkt))
      throw shaped(fail('jkt_mismatch', REFRESH_BINDING), report);
    let prepared: PreparedProof;
    try {
      prepared = await verifier.prepare(value, {
        method: request.method,
        url: resolveUrl(request),
        ...(dpopJkt !== undefined || boundJkt !== undefined ? { jkt: dpopJkt ?? boundJkt } : {}),
      });
    } catch (e) {
      if (e instanceof DPoPError && e.reason === 'jkt_mismatch') {
        throw shaped(
          dpopJkt !== undefined ? fail('dpop_jkt_mismatch') : fail('jkt_mismatch', REFRESH_BINDING),
          report,
        );
      }
      throw shaped(e, report);
    }
    const { proof } = prepared;
    if (report !== undefined) {
      report.proof = proof;
      report.spent = performance.now() - report.start;
    }
    let committed: Promise<void> | undefined;
    return {
      jkt: proof.jkt,
      proof,
      headers:
        proof.nextNonce === undefined
          ? {}
          : {
              'DPoP-Nonce': proof.nextNonce,
              'Access-Control-Expose-Headers': DPOP_CORS_EXPOSE_VALUE,
            },
      commit: (options) =>
        (committed ??= recorded(prepared.commit(clientAccount(options?.account)), report)),
    };
  };

  /** The commit's outcome, reported (accepted, or refused as a replay or by the store). */
  const recorded = (commit: Promise<void>, report: TokenReport | undefined): Promise<void> => {
    const started = report === undefined ? 0 : performance.now();
    const stored = () => {
      if (report !== undefined) report.storeMs = performance.now() - started;
    };
    return commit.then(
      () => {
        stored();
        if (onResult !== undefined && report !== undefined)
          reportSafely(onResult, {
            outcome: 'accepted',
            scheme: 'DPoP',
            bound: ['jkt'],
            ...tokenDetails(report, clock),
          });
      },
      (e: unknown) => {
        stored();
        throw shaped(e, report);
      },
    );
  };

  const verify = async (
    request: RequestLike,
    context: TokenRequestContext = {},
  ): Promise<TokenRequestResult | undefined> => {
    const prepared = await prepare(request, context);
    if (prepared === undefined) return undefined;
    await prepared.commit(clientAccount(context.account));
    const { commit: _, ...result } = prepared;
    return result;
  };
  return Object.assign(verify, { prepare });
}

/**
 * One-shot form of {@link createTokenRequestVerifier}; `options.dpopJkt` carries the
 * authorization request's `dpop_jkt`. Prefer the factory on a busy endpoint: it keeps its
 * key cache between calls.
 */
export async function verifyTokenRequest(
  request: RequestLike,
  options: TokenRequestOptions & TokenRequestContext,
): Promise<TokenRequestResult> {
  const { dpopJkt: _jkt, boundJkt: _bound, account: _account, ...verifierOptions } = options;
  const verify = createTokenRequestVerifier({ ...verifierOptions, required: true });
  const result = await verify(request, options);
  return result!;
}

/** The authenticated client as the replay store's account (prefixed: never a token subject's). */
function clientAccount(account: unknown): { account?: string } {
  return typeof account === 'string' && account.length > 0
    ? { account: `as-client:${account}` }
    : {};
}

/** What a token request's outcome reports, gathered on the way (when `onResult` is set). */
interface TokenReport {
  /** `performance.now()` when the check started. */
  readonly start: number;
  /** Ms spent checking, once the proof passed (the grant's own checks are not counted). */
  spent: number | undefined;
  proofLength: number | undefined;
  proof: VerifiedProof | undefined;
  storeMs: number | undefined;
}

function newReport(start: number): TokenReport {
  return { start, spent: undefined, proofLength: undefined, proof: undefined, storeMs: undefined };
}

function tokenDetails(report: TokenReport, clock: () => number): OutcomeDetails {
  const now = performance.now();
  const out: OutcomeDetails = {
    endpoint: 'token',
    durationMs:
      report.spent === undefined ? now - report.start : report.spent + (report.storeMs ?? 0),
  };
  if (report.proofLength !== undefined) out.proofLength = report.proofLength;
  if (report.storeMs !== undefined) out.storeMs = report.storeMs;
  if (report.proof !== undefined) {
    out.alg = report.proof.alg;
    out.iatSkew = clockSkew(report.proof.claims.iat, clock());
  }
  return out;
}

function reportSafely(onResult: (outcome: AuthOutcome) => void, outcome: AuthOutcome): void {
  try {
    onResult(outcome);
  } catch {
    // metrics must never change an answer
  }
}
