/**
 * OAuth error codes the verifier returns: RFC 9449 §7.1 and §12.2 (`invalid_dpop_proof`,
 * `use_dpop_nonce`), RFC 6750 §3.1 (`invalid_token`, `invalid_request`, `insufficient_scope`:
 * HTTP 403, the token lacks `requiredScopes`), and `server_error` for a replay store that cannot
 * answer (fail closed, HTTP 503, retryable).
 */
export type DPoPErrorCode =
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'invalid_token'
  | 'invalid_request'
  | 'insufficient_scope'
  | 'server_error';

/**
 * Why a request was rejected, finer than the OAuth `code`: for logs and metrics (`onResult`).
 * Stable strings; never contain request data.
 */
export type DPoPRejectReason =
  // request shape (RFC 6750 §2; RFC 9449 §4.3 check 1: `missing_proof`, `multiple_proofs`)
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
  // the proof's form and header (RFC 9449 §4.3 checks 2, 4, 5, 6, 7)
  | 'proof_too_long'
  | 'proof_malformed'
  | 'typ'
  | 'alg'
  | 'jwk'
  | 'crit'
  | 'b64'
  | 'signature'
  // claims, nonce, freshness, binding, replay (checks 3, 8 to 12; §11.1)
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
  // the access token (RFC 6750 §3.1 `invalid_token`; RFC 9068 §4; RFC 7662 §2.2)
  | 'token_invalid'
  | 'token_malformed'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_audience'
  | 'token_issuer'
  | 'token_type'
  | 'token_algorithm'
  | 'token_signature'
  | 'token_unknown_key'
  | 'token_inactive'
  | 'jwks_unavailable'
  | 'introspection_busy'
  | 'introspection_unavailable'
  // token binding
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
  // authorization (RFC 6750 §3.1): a valid token without the scopes this resource requires
  | 'insufficient_scope'
  | 'internal_error';

/** Default HTTP status per code at a resource server. */
const RS_STATUS: Record<DPoPErrorCode, number> = {
  invalid_dpop_proof: 401,
  use_dpop_nonce: 401,
  invalid_token: 401,
  invalid_request: 400,
  insufficient_scope: 403,
  server_error: 503,
};

/**
 * Why a request was refused, for programmatic use (`DPoPError.explanation`, set by
 * `createDPoPAuth` on every refusal): the failing check and fingerprints only, never a token,
 * proof or key. The same as the `explain: 'log'` line; `popkit explain` (`@popkit/explain`) on
 * the request shows every check and the fix.
 */
export interface DPoPExplanation {
  /** The failing RFC 9449 §4.3 check (`check 9`), or the step (`binding (scheme)`, `access token`, `request`, …). */
  check: string;
  reason: DPoPRejectReason;
  code: DPoPErrorCode;
  status: number;
  /** The request's scheme, once read. */
  scheme?: 'DPoP' | 'Bearer';
  /** A hash prefix of the access token (`sha256:…`, the start of its `ath`). */
  token?: string;
  /** The token's `cnf.jkt`, once validated. */
  jkt?: string;
}

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
  /**
   * The failing check and fingerprints (see {@link DPoPExplanation}), on refusals by
   * `createDPoPAuth` and its adapters; not enumerable (kept out of JSON and logs of the error).
   */
  declare readonly explanation?: DPoPExplanation;

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

const PROOF = 'invalid_dpop_proof';
const TOKEN = 'invalid_token';
const REQUEST = 'invalid_request';
const NONCE = 'use_dpop_nonce';
const SERVER = 'server_error';
const STORE_DOWN = 'The DPoP replay check is unavailable; retry later';
const CNF = 'The access token confirmation is malformed';

/**
 * The one table of refusals: each `reason` with its OAuth `code` (and so its status, see
 * {@link DPoPError}) and its default `error_description`. Numbers are RFC 9449 §4.3's checks.
 * @internal
 */
export const REFUSALS: { readonly [R in DPoPRejectReason]: readonly [DPoPErrorCode, string] } = {
  // the request (RFC 6750 §2, §3; RFC 9449 §7)
  missing_authorization: [TOKEN, 'An access token is required'],
  multiple_authorization: [REQUEST, 'Exactly one Authorization header is allowed'],
  malformed_authorization: [REQUEST, 'The Authorization header is malformed'],
  token_in_query: [REQUEST, 'The access token must only be sent in the Authorization header'],
  token_in_body: [REQUEST, 'The access token must only be sent in the Authorization header'],
  invalid_url: [REQUEST, 'The request URL cannot be used for DPoP'],
  invalid_host: [REQUEST, 'The request host is not allowed'],
  invalid_path: [REQUEST, 'The request path must not contain dot segments or backslashes'],
  // check 1: one DPoP header
  missing_proof: [PROOF, 'A DPoP proof is required'],
  multiple_proofs: [REQUEST, 'Exactly one DPoP header is allowed'],
  // check 2: a well-formed JWS
  proof_too_long: [PROOF, 'The DPoP proof is too long'],
  proof_malformed: [PROOF, 'The DPoP proof is invalid'],
  // checks 4, 5, 7: the header
  typ: [PROOF, 'The DPoP proof typ must be dpop+jwt'],
  alg: [PROOF, 'The DPoP proof alg is not allowed'],
  crit: [PROOF, 'The DPoP proof uses an unsupported critical header'],
  b64: [PROOF, 'The DPoP proof must not use the b64 header parameter'],
  jwk: [PROOF, 'Invalid DPoP proof key'],
  // check 6: the signature
  signature: [PROOF, 'The DPoP proof signature is invalid'],
  // checks 3, 8, 9, 11: the claims
  htm: [PROOF, 'The DPoP proof htm does not match the request method'],
  htu: [PROOF, 'The DPoP proof htu does not match the request URL'],
  jti: [PROOF, 'The DPoP proof jti is missing or too long'],
  iat_missing: [PROOF, 'The DPoP proof iat is missing'],
  exp: [PROOF, 'The DPoP proof has expired'],
  nbf: [PROOF, 'The DPoP proof is not valid yet'],
  // checks 10, 11 (§8, §11.1): nonce and freshness
  nonce_malformed: [PROOF, 'The DPoP proof nonce must be a string'],
  nonce_missing: [NONCE, 'A DPoP nonce is required'],
  nonce_invalid: [NONCE, 'The DPoP nonce is invalid or expired'],
  iat_too_old: [PROOF, 'The DPoP proof is too old'],
  iat_in_future: [PROOF, 'The DPoP proof iat is in the future'],
  iat_before_restart: [PROOF, 'The DPoP proof predates the server replay memory; sign a new one'],
  // check 12: ath and the key binding
  ath_missing: [PROOF, 'The DPoP proof must contain ath for this access token'],
  ath_mismatch: [PROOF, 'The DPoP proof ath does not match the access token'],
  jkt_mismatch: [TOKEN, 'The access token is not bound to the DPoP proof key'],
  dpop_jkt_mismatch: [PROOF, 'The DPoP proof key does not match dpop_jkt'],
  // §11.1: the replay store
  replay: [PROOF, 'The DPoP proof has already been used'],
  replay_store_full: [SERVER, STORE_DOWN],
  replay_over_share: [SERVER, STORE_DOWN],
  replay_store_error: [SERVER, STORE_DOWN],
  // the access token and its binding (RFC 9449 §7, RFC 8705 §3)
  token_invalid: [TOKEN, 'The access token is invalid'],
  token_malformed: [TOKEN, 'The access token is malformed'],
  token_expired: [TOKEN, 'The access token expired'],
  token_not_yet_valid: [TOKEN, 'The access token is not valid yet'],
  token_audience: [TOKEN, 'The access token is not meant for this resource'],
  token_issuer: [TOKEN, 'The access token has the wrong issuer'],
  token_type: [TOKEN, 'The token is not an access token'],
  token_algorithm: [TOKEN, 'The access token is signed with an algorithm that is not allowed'],
  token_signature: [TOKEN, 'The access token signature is invalid'],
  token_unknown_key: [TOKEN, 'The access token is signed by an unknown key'],
  token_inactive: [TOKEN, 'The access token is not active'],
  jwks_unavailable: [SERVER, 'The access token cannot be validated right now'],
  introspection_busy: [SERVER, 'The access token cannot be validated right now'],
  introspection_unavailable: [SERVER, 'The access token cannot be validated right now'],
  token_not_bound: [TOKEN, 'The access token is not bound to a DPoP key'],
  bearer_not_allowed: [TOKEN, 'This resource requires a DPoP-bound access token'],
  downgrade: [TOKEN, 'A DPoP-bound access token must be sent with the DPoP scheme'],
  proof_without_binding: [TOKEN, 'The access token is not bound to a DPoP key'],
  cnf_unknown: [TOKEN, 'The access token uses an unsupported confirmation method'],
  cnf_malformed: [TOKEN, CNF],
  certificate_missing: [TOKEN, 'This access token requires the client certificate it is bound to'],
  certificate_mismatch: [
    TOKEN,
    'The access token is not bound to the presented client certificate',
  ],
  certificate_unusable: [TOKEN, 'The client certificate information cannot be used'],
  // RFC 6750 §3.1: authenticated, but not allowed (step-up: the challenge names the scopes)
  insufficient_scope: [
    'insufficient_scope',
    'The access token lacks the scope this resource requires',
  ],
  internal_error: [SERVER, 'The request could not be verified'],
};

/** Options of {@link refuse}: a more precise description, the code when it depends on context. */
export interface RefuseOptions extends DPoPErrorOptions {
  description?: string;
  code?: DPoPErrorCode;
}

/**
 * The {@link DPoPError} for `reason`, from {@link REFUSALS}: its code, status and description
 * unless `options` says otherwise. Every refusal of the verifier is built here. @internal
 */
export function refuse(reason: DPoPRejectReason, options?: RefuseOptions): DPoPError {
  const [code, description] = REFUSALS[reason];
  if (options === undefined) return new DPoPError(code, reason, description);
  return new DPoPError(options.code ?? code, reason, options.description ?? description, options);
}

/** A bad option, found when a verifier or middleware is built. */
export class DPoPConfigError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE' as const;
  constructor(option: string, why: string) {
    super(`"${option}" ${why}`);
    this.name = 'DPoPConfigError';
  }
}
