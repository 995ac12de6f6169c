/**
 * OAuth error codes the verifier returns: RFC 9449 §7.1 and §12.2 (`invalid_dpop_proof`,
 * `use_dpop_nonce`), RFC 6750 §3.1 (`invalid_token`, `invalid_request`), and `server_error`
 * for a replay store that cannot answer (fail closed, HTTP 503, retryable).
 */
export type DPoPErrorCode =
  'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_token' | 'invalid_request' | 'server_error';

/**
 * Why a request was rejected, finer than the OAuth `code`: for logs and metrics (`onResult`).
 * Stable strings; never contain request data.
 */
export type DPoPRejectReason =
  // request shape
  | 'missing_authorization'
  | 'multiple_authorization'
  | 'malformed_authorization'
  | 'missing_proof'
  | 'multiple_proofs'
  | 'invalid_url'
  | 'invalid_host'
  | 'invalid_path'
  | 'token_in_query'
  | 'token_in_body'
  // proof syntax (RFC 9449 §4.3 steps 1-4)
  | 'proof_too_long'
  | 'proof_malformed'
  | 'typ'
  | 'alg'
  | 'jwk'
  | 'crit'
  | 'b64'
  | 'signature'
  // claims (steps 5-12)
  | 'htm'
  | 'htu'
  | 'iat_missing'
  | 'iat_too_old'
  | 'iat_in_future'
  | 'iat_before_restart'
  | 'exp'
  | 'nbf'
  | 'jti'
  | 'nonce_missing'
  | 'nonce_invalid'
  | 'nonce_malformed'
  | 'ath_missing'
  | 'ath_mismatch'
  | 'jkt_mismatch'
  | 'replay'
  | 'replay_store_full'
  | 'replay_over_share'
  | 'replay_store_error'
  // token binding
  | 'token_invalid'
  | 'introspection_busy'
  | 'introspection_unavailable'
  | 'token_not_bound'
  | 'bearer_not_allowed'
  | 'downgrade'
  | 'proof_without_binding'
  | 'cnf_unknown'
  | 'cnf_malformed'
  | 'certificate_missing'
  | 'certificate_mismatch'
  | 'certificate_unusable'
  | 'dpop_jkt_mismatch'
  | 'internal_error';

/** Default HTTP status per code at a resource server. */
const RS_STATUS: Record<DPoPErrorCode, number> = {
  invalid_dpop_proof: 401,
  use_dpop_nonce: 401,
  invalid_token: 401,
  invalid_request: 400,
  server_error: 503,
};

/** Options of {@link DPoPError}. */
export interface DPoPErrorOptions {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  cause?: unknown;
}

/**
 * The one error class of `@popkit/dpop-verifier`. Carries everything an adapter needs to answer:
 * `status`, ready `headers` (`WWW-Authenticate`, `DPoP-Nonce`, `Cache-Control`) and, at a token
 * endpoint, a JSON `body`. `message` is the `error_description`: it never contains a token,
 * proof, key or certificate.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export class DPoPError extends Error {
  readonly code: DPoPErrorCode;
  readonly reason: DPoPRejectReason;
  status: number;
  headers: Record<string, string>;
  body: string | undefined;

  constructor(
    code: DPoPErrorCode,
    reason: DPoPRejectReason,
    description: string,
    options: DPoPErrorOptions = {},
  ) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DPoPError';
    this.code = code;
    this.reason = reason;
    this.status = options.status ?? RS_STATUS[code];
    this.headers = options.headers ?? {};
    this.body = options.body;
  }

  /** A Web `Response` for this error (Hono, Workers, Next.js middleware). */
  toResponse(): Response {
    return new Response(this.body ?? null, { status: this.status, headers: this.headers });
  }
}

/** @internal */
export function proofError(
  reason: DPoPRejectReason,
  description: string,
  cause?: unknown,
): DPoPError {
  return new DPoPError(
    'invalid_dpop_proof',
    reason,
    description,
    cause === undefined ? {} : { cause },
  );
}

/** A bad option, found when a verifier or middleware is built. */
export class DPoPConfigError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE' as const;
  constructor(option: string, why: string) {
    super(`"${option}" ${why}`);
    this.name = 'DPoPConfigError';
  }
}
