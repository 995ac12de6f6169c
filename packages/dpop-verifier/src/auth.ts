import type { AccessTokenOption, TokenClaims } from './access-token.ts';
import { DEFAULT_ALGORITHMS } from './algorithms.ts';
import { createTokenValidator } from './access-token.ts';
import type { ChallengeConfig } from './challenge.ts';
import { wwwAuthenticate } from './challenge.ts';
import type { DPoPRejectReason } from './errors.ts';
import { DPoPConfigError, DPoPError } from './errors.ts';
import type { PublicUrlOptions, RequestLike } from './request.ts';
import { createUrlResolver, headerValues, requireUrlTrust } from './request.ts';
import { timingSafeEqual } from './timing-safe.ts';
import type { MaybePromise } from './maybe-async.ts';
import { isPromiseLike, settle } from './maybe-async.ts';
import { TOKEN_HASH, accessTokenSha256 } from './token-hash.ts';
import type {
  InternalExpectation,
  PreparedProof,
  VerifiedProof,
  VerifyProofOptions,
} from './verify-proof.ts';
import { checkKeyBinding, compileProofChecks } from './verify-proof.ts';

/**
 * Returns the `x5t#S256` thumbprint (base64url SHA-256 of the DER) of the TLS client certificate
 * presented with this request, or `undefined` when there is none. `@popkit/mtls-binding`
 * provides it from a TLS socket or a trusted proxy header.
 */
export type CertificateThumbprintSource = (
  request: RequestLike,
) => string | undefined | Promise<string | undefined>;

/**
 * What `onResult` receives: never a token, proof or key. `replayFill` (0 to 1) is the replay
 * store's fill level when the store reports it (`MemoryReplayStore` does); refusals by the store
 * arrive as `reason` `replay_store_full` (full) or `replay_over_share` (that key holds more than
 * its fair share).
 */
export type AuthOutcome =
  | {
      outcome: 'accepted';
      scheme: 'DPoP' | 'Bearer';
      bound: Array<'jkt' | 'x5t#S256'>;
      durationMs: number;
      replayFill?: number;
    }
  | {
      outcome: 'rejected';
      code: DPoPError['code'];
      reason: DPoPRejectReason;
      status: number;
      scheme?: 'DPoP' | 'Bearer';
      durationMs: number;
      replayFill?: number;
    };

/** Options of {@link createDPoPAuth}. */
export interface DPoPAuthOptions
  extends Omit<VerifyProofOptions, 'requireNonce'>, PublicUrlOptions {
  /** How access tokens are validated: a function, RFC 9068 JWT options, or RFC 7662 introspection. */
  accessToken: AccessTokenOption;
  /**
   * Also accept **unbound** bearer tokens on the `Bearer` scheme (mixed mode). Default false:
   * sender-constrained only ("DPoP or mTLS, nothing else", the FAPI 2.0 resource-server
   * policy): `cnf.jkt` tokens with a DPoP proof, and, when `certificate` is set,
   * `cnf["x5t#S256"]` tokens on `Bearer` with their certificate (RFC 8705 §3).
   */
  allowUnboundBearer?: boolean;
  /** @deprecated The former name of `allowUnboundBearer` (same meaning). */
  allowBearer?: boolean;
  /** Demand a server nonce: always, never, or per request. Default: true when `nonces` is set. */
  requireNonce?: boolean | ((request: RequestLike) => boolean);
  /** The presented client certificate's thumbprint, for `cnf["x5t#S256"]` tokens (RFC 8705). */
  certificate?: CertificateThumbprintSource;
  /** Called once per request with the typed outcome, for metrics. */
  onResult?: (outcome: AuthOutcome) => void;
  /** `realm` of the challenges. */
  realm?: string;
  /** Longest access token accepted. Default 16384. */
  maxTokenLength?: number;
}

/** A request that passed authentication. */
export interface AuthResult {
  /** The access token (keep it out of logs). */
  token: string;
  claims: TokenClaims;
  scheme: 'DPoP' | 'Bearer';
  /** Thumbprint of the proof key, for DPoP. */
  jkt?: string;
  proof?: VerifiedProof;
  /** Headers to add to the response (`DPoP-Nonce` when the client should move to a new one). */
  headers: Record<string, string>;
}

/** A resource-server verifier built by {@link createDPoPAuth}. */
export interface DPoPAuth {
  /** Authenticates one request; throws {@link DPoPError} with ready `status` and `headers`. */
  verify(request: RequestLike): Promise<AuthResult>;
}

interface RequestState {
  scheme?: 'DPoP' | 'Bearer';
  bound: Array<'jkt' | 'x5t#S256'>;
}

/** A request's credentials once the cheap checks passed. */
interface Presented {
  request: RequestLike;
  scheme: 'DPoP' | 'Bearer';
  token: string;
  tokenHash: string | Promise<string>;
  proof: string | undefined;
  /** The expected `htu` source (DPoP only). */
  url: string;
  requireNonce: boolean | undefined;
}

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const KNOWN_CNF = new Set(['jkt', 'x5t#S256']);

/**
 * Builds the resource-server side of DPoP and certificate-bound tokens (RFC 9449 §7, RFC 8705
 * §3, RFC 6750). Options are validated here, once. Per request it enforces:
 *
 * - exactly one `Authorization` header (`DPoP` or, with `allowBearer`, `Bearer`; any case) and
 *   at most one `DPoP` header (duplicates, joined or not, are refused);
 * - the access token through `accessToken` (hook, RFC 9068 JWT via jose, or RFC 7662);
 * - every `cnf` member: `jkt` needs the `DPoP` scheme and a proof by that key (a bound token
 *   sent as `Bearer` is a downgrade and is refused); `x5t#S256` needs the presented certificate
 *   (`certificate`); any other member is refused; a token bound both ways needs both;
 * - the proof: every RFC 9449 §4.3 check, `ath`, nonces, replay (see `createProofVerifier`).
 *
 * Failures are {@link DPoPError}s carrying the 401/400/503 status and the exact
 * `WWW-Authenticate` (`DPoP error=…, error_description=…, algs=…`, plus `Bearer` in mixed mode)
 * and `DPoP-Nonce` headers. Adapters for Express, Fastify and Hono only serialise them.
 *
 * @example
 * ```ts
 * const auth = createDPoPAuth({
 *   accessToken: { issuer: 'https://as.example.com', audience: 'https://api.example.com', jwks: new URL('https://as.example.com/jwks') },
 *   publicUrl: 'https://api.example.com',
 *   replay: new MemoryReplayStore(),
 *   nonces: createNonceIssuer({ secret: process.env.NONCE_SECRET! }),
 * });
 * const { claims } = await auth.verify(request);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export function createDPoPAuth(options: DPoPAuthOptions): DPoPAuth {
  const now = compileDPoPAuth(options);
  const auth: DPoPAuth = { verify: (request) => settle(() => now(request)) };
  compiled.set(auth, now);
  return auth;
}

/** Authenticates one request, returning a promise only when a step needs one. @internal */
export type AuthenticateNow = (request: RequestLike) => MaybePromise<AuthResult>;

const compiled = new WeakMap<DPoPAuth, AuthenticateNow>();

/**
 * The synchronous-when-possible form of a verifier built by {@link createDPoPAuth} (adapters
 * call it so that a request verified without any asynchronous step continues at once), or
 * `undefined` for another `DPoPAuth` implementation. @internal
 */
export function authenticateNowOf(auth: DPoPAuth): AuthenticateNow | undefined {
  return compiled.get(auth);
}

/** Validates the options once and compiles the per-request checks. @internal */
export function compileDPoPAuth(options: DPoPAuthOptions): AuthenticateNow {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  const { requireNonce, certificate, onResult, realm } = options;
  if (options.allowBearer !== undefined && options.allowUnboundBearer !== undefined)
    throw new DPoPConfigError('allowBearer', 'is the old name of "allowUnboundBearer": set one');
  const allowUnboundBearer = options.allowUnboundBearer ?? options.allowBearer ?? false;
  if (typeof allowUnboundBearer !== 'boolean')
    throw new DPoPConfigError('allowUnboundBearer', 'must be a boolean');
  requireUrlTrust(options);
  if (certificate !== undefined && typeof certificate !== 'function')
    throw new DPoPConfigError('certificate', 'must be a function');
  if (onResult !== undefined && typeof onResult !== 'function')
    throw new DPoPConfigError('onResult', 'must be a function');
  if (realm !== undefined && typeof realm !== 'string')
    throw new DPoPConfigError('realm', 'must be a string');
  if (
    requireNonce !== undefined &&
    typeof requireNonce !== 'boolean' &&
    typeof requireNonce !== 'function'
  ) {
    throw new DPoPConfigError('requireNonce', 'must be a boolean or a function');
  }
  if (requireNonce && options.nonces === undefined)
    throw new DPoPConfigError('requireNonce', 'needs "nonces"');
  const maxTokenLength = options.maxTokenLength ?? 16384;
  const proofs = compileProofChecks({
    ...options,
    requireNonce: typeof requireNonce === 'boolean' ? requireNonce : options.nonces !== undefined,
  });
  const validateToken = createTokenValidator(options.accessToken);
  const store = options.replay;
  const replayFill =
    store !== false && typeof store?.stats === 'function'
      ? (): { replayFill?: number } => {
          try {
            return { replayFill: store.stats!().fill };
          } catch {
            return {};
          }
        }
      : (): { replayFill?: number } => ({});
  const resolveUrl = createUrlResolver(options);
  // The Bearer scheme is open to certificate-bound tokens (with a certificate source) and, by
  // explicit choice, to unbound tokens.
  const bearerScheme = allowUnboundBearer || certificate !== undefined;
  const challenge: ChallengeConfig = {
    algs: (options.algorithms ?? DEFAULT_ALGORITHMS).join(' '),
    allowBearer: bearerScheme,
    ...(realm === undefined ? {} : { realm }),
  };

  const reject = (
    error: DPoPError,
    scheme: 'DPoP' | 'Bearer' | undefined,
    withError = true,
  ): DPoPError => {
    const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...error.headers };
    if (error.code !== 'server_error')
      headers['WWW-Authenticate'] = wwwAuthenticate(
        challenge,
        scheme,
        withError ? error : undefined,
      );
    error.headers = headers;
    return error;
  };

  /** A failed proof check, shaped for this resource server. */
  const proofFailure = (e: unknown, scheme: 'DPoP' | 'Bearer'): DPoPError =>
    reject(
      e instanceof DPoPError
        ? e
        : new DPoPError('invalid_dpop_proof', 'proof_malformed', 'The DPoP proof is invalid'),
      scheme,
    );
  /** A refused access token, shaped for this resource server. */
  const tokenFailure = (e: unknown, scheme: 'DPoP' | 'Bearer'): DPoPError =>
    reject(
      e instanceof DPoPError
        ? e
        : new DPoPError('invalid_token', 'token_invalid', 'The access token is invalid'),
      scheme,
    );

  // Each step returns its result when it has it and a promise only when it does not (a token
  // not yet validated, a remote validator, WebCrypto, nonces, an asynchronous store): on Node
  // with the memory store, a request with a known token is verified without a promise.

  /** The request's credentials, checked cheaply; then the token, its binding and the proof. */
  function authenticate(request: RequestLike, state: RequestState): MaybePromise<AuthResult> {
    if (request === null || typeof request !== 'object' || typeof request.method !== 'string') {
      throw new DPoPError('invalid_request', 'invalid_url', 'The request is malformed');
    }
    const authorization = headerValues(request, 'authorization');
    if (authorization.length === 0) {
      throw reject(
        new DPoPError('invalid_token', 'missing_authorization', 'An access token is required'),
        undefined,
        false,
      );
    }
    if (authorization.length > 1 || authorization[0]!.includes(',')) {
      throw reject(
        new DPoPError(
          'invalid_request',
          'multiple_authorization',
          'Exactly one Authorization header is allowed',
        ),
        undefined,
      );
    }
    const value = authorization[0]!;
    const space = value.indexOf(' ');
    const schemeName = space > 0 ? value.slice(0, space).toLowerCase() : value.toLowerCase();
    const token = space > 0 ? value.slice(space + 1).trim() : '';
    const scheme = schemeName === 'dpop' ? 'DPoP' : schemeName === 'bearer' ? 'Bearer' : undefined;
    if (scheme === undefined) {
      throw reject(
        new DPoPError('invalid_token', 'missing_authorization', 'An access token is required'),
        undefined,
        false,
      );
    }
    state.scheme = scheme;
    if (token.length === 0 || token.length > maxTokenLength || !TOKEN68.test(token)) {
      throw reject(
        new DPoPError(
          'invalid_request',
          'malformed_authorization',
          'The Authorization header is malformed',
        ),
        scheme,
      );
    }
    if (scheme === 'Bearer' && !bearerScheme) {
      throw reject(
        new DPoPError(
          'invalid_token',
          'bearer_not_allowed',
          'This resource requires a DPoP-bound access token',
        ),
        'DPoP',
      );
    }
    const dpopHeaders = headerValues(request, 'dpop');
    if (dpopHeaders.length > 1 || (dpopHeaders.length === 1 && dpopHeaders[0]!.includes(','))) {
      throw reject(
        new DPoPError('invalid_request', 'multiple_proofs', 'Exactly one DPoP header is allowed'),
        scheme,
      );
    }
    // One way to send the token (RFC 6750 §2): never also in the query or a form body.
    tokenElsewhere(request, scheme);
    // Cheap checks before the token is validated (a signature, or an introspection call).
    if (scheme === 'DPoP' && dpopHeaders.length === 0) {
      throw reject(
        new DPoPError('invalid_dpop_proof', 'missing_proof', 'A DPoP proof is required'),
        scheme,
      );
    }
    const presented: Presented = {
      request,
      scheme,
      token,
      // hashed once: the validated-token cache key and the proof's `ath`
      tokenHash: accessTokenSha256(token),
      proof: dpopHeaders[0],
      url: scheme === 'DPoP' ? resolveUrl(request) : '',
      requireNonce:
        scheme === 'DPoP' && typeof requireNonce === 'function' ? requireNonce(request) : undefined,
    };
    if (scheme === 'DPoP' && validateToken.remote === true)
      return authenticateRemote(presented, state);
    let claims: MaybePromise<TokenClaims>;
    try {
      claims = validateToken(token, request, presented.tokenHash);
    } catch (e) {
      throw tokenFailure(e, scheme);
    }
    if (!isPromiseLike(claims)) return bound(presented, claims, state, undefined);
    return claims.then(
      (valid) => bound(presented, valid, state, undefined),
      (e: unknown) => {
        throw tokenFailure(e, scheme);
      },
    );
  }

  /**
   * With a remote validator (introspection) a call costs more than a signature: the proof is
   * checked first (signature, claims, nonce, ath for this very token), so each outbound call
   * needs a valid fresh proof; the key binding is compared and the jti recorded afterwards.
   */
  async function authenticateRemote(
    presented: Presented,
    state: RequestState,
  ): Promise<AuthResult> {
    let prepared: PreparedProof;
    try {
      prepared = await proofs.prepare(presented.proof!, expectation(presented, undefined));
    } catch (e) {
      throw proofFailure(e, presented.scheme);
    }
    let claims: TokenClaims;
    try {
      claims = await validateToken(presented.token, presented.request, presented.tokenHash);
    } catch (e) {
      throw tokenFailure(e, presented.scheme);
    }
    return bound(presented, claims, state, prepared);
  }

  /** What the proof must match. */
  const expectation = (
    presented: Presented,
    jkt: string | undefined,
    claims?: TokenClaims,
  ): InternalExpectation => ({
    method: presented.request.method,
    url: presented.url,
    accessToken: presented.token,
    jkt,
    requireNonce: presented.requireNonce,
    account: claims === undefined ? undefined : accountOf(claims),
    [TOKEN_HASH]: presented.tokenHash,
  });

  /** The token's `cnf` against the scheme; then the certificate, then the proof. */
  function bound(
    presented: Presented,
    claims: TokenClaims,
    state: RequestState,
    prepared: PreparedProof | undefined,
  ): MaybePromise<AuthResult> {
    const { scheme } = presented;
    const cnf = claims.cnf;
    const members = cnf !== null && typeof cnf === 'object' ? Object.keys(cnf) : undefined;
    if (
      cnf !== undefined &&
      (members === undefined || Array.isArray(cnf) || members.length === 0)
    ) {
      throw reject(
        new DPoPError(
          'invalid_token',
          'cnf_malformed',
          'The access token confirmation is malformed',
        ),
        scheme,
      );
    }
    if (members !== undefined) {
      for (const member of members) {
        if (!KNOWN_CNF.has(member)) {
          throw reject(
            new DPoPError(
              'invalid_token',
              'cnf_unknown',
              'The access token uses an unsupported confirmation method',
            ),
            scheme,
          );
        }
      }
    }
    const jkt = cnf?.jkt;
    const x5t = cnf?.['x5t#S256'];
    if (scheme === 'DPoP') {
      if (typeof jkt !== 'string' || !THUMBPRINT.test(jkt)) {
        throw reject(
          new DPoPError(
            'invalid_token',
            jkt === undefined ? 'token_not_bound' : 'cnf_malformed',
            'The access token is not bound to a DPoP key',
          ),
          scheme,
        );
      }
    } else if (jkt !== undefined) {
      throw reject(
        new DPoPError(
          'invalid_token',
          'downgrade',
          'A DPoP-bound access token must be sent with the DPoP scheme',
        ),
        scheme,
      );
    } else if (x5t === undefined && !allowUnboundBearer) {
      throw reject(
        new DPoPError(
          'invalid_token',
          'token_not_bound',
          'This resource requires a sender-constrained access token (DPoP or mTLS)',
        ),
        scheme,
      );
    }
    if (x5t === undefined) return proven(presented, claims, jkt, state, prepared);
    // The certificate binding first: a comparison, cheaper than a proof signature.
    if (typeof x5t !== 'string' || !THUMBPRINT.test(x5t)) {
      throw reject(
        new DPoPError(
          'invalid_token',
          'cnf_malformed',
          'The access token certificate confirmation is malformed',
        ),
        scheme,
      );
    }
    // Certificate information the client influences (a proxy header, the presented
    // certificate) that cannot be used: a 401 with a reason, never a 5xx on demand.
    const unusable = (cause: unknown): DPoPError =>
      reject(
        new DPoPError(
          'invalid_token',
          'certificate_unusable',
          'The client certificate information cannot be used',
          { cause },
        ),
        scheme,
      );
    const withCertificate = (presentedCertificate: unknown): MaybePromise<AuthResult> => {
      if (presentedCertificate === undefined) {
        throw reject(
          new DPoPError(
            'invalid_token',
            'certificate_missing',
            'This access token requires the client certificate it is bound to',
          ),
          scheme,
        );
      }
      if (typeof presentedCertificate !== 'string' || !timingSafeEqual(presentedCertificate, x5t)) {
        throw reject(
          new DPoPError(
            'invalid_token',
            'certificate_mismatch',
            'The access token is not bound to the presented client certificate',
          ),
          scheme,
        );
      }
      state.bound.push('x5t#S256');
      return proven(presented, claims, jkt, state, prepared);
    };
    let thumbprint: MaybePromise<string | undefined>;
    try {
      thumbprint = certificate === undefined ? undefined : certificate(presented.request);
    } catch (cause) {
      throw unusable(cause);
    }
    if (!isPromiseLike(thumbprint)) return withCertificate(thumbprint);
    return thumbprint.then(withCertificate, (cause: unknown) => {
      throw unusable(cause);
    });
  }

  /** The proof, for the DPoP scheme: checked and recorded (or, prepared, bound and recorded). */
  function proven(
    presented: Presented,
    claims: TokenClaims,
    jkt: unknown,
    state: RequestState,
    prepared: PreparedProof | undefined,
  ): MaybePromise<AuthResult> {
    const { scheme } = presented;
    if (scheme !== 'DPoP') return { token: presented.token, claims, scheme, headers: {} };
    let proof: MaybePromise<VerifiedProof>;
    try {
      if (prepared === undefined) {
        proof = proofs.now(presented.proof!, expectation(presented, jkt as string, claims));
      } else {
        checkKeyBinding(prepared.proof.jkt, jkt);
        proof = prepared.commit({ account: accountOf(claims) }).then(() => prepared.proof);
      }
    } catch (e) {
      throw proofFailure(e, scheme);
    }
    if (!isPromiseLike(proof)) return withProof(presented, claims, state, proof);
    return proof.then(
      (verified) => withProof(presented, claims, state, verified),
      (e: unknown) => {
        throw proofFailure(e, scheme);
      },
    );
  }

  /** Reports an accepted request to `onResult`. */
  const succeeded = (result: AuthResult, state: RequestState, start: number): AuthResult => {
    if (onResult) {
      safe(() =>
        onResult({
          outcome: 'accepted',
          scheme: result.scheme,
          bound: state.bound,
          durationMs: performance.now() - start,
          ...replayFill(),
        }),
      );
    }
    return result;
  };
  /** Shapes any failure for this resource server and reports it to `onResult`. */
  const failed = (e: unknown, state: RequestState, start: number): DPoPError => {
    // Errors not yet shaped for this resource server (e.g. a rejected Host) get its headers.
    const error =
      e instanceof DPoPError
        ? e.headers['Cache-Control']
          ? e
          : reject(e, state.scheme)
        : reject(
            new DPoPError('server_error', 'internal_error', 'The request could not be verified', {
              cause: e,
            }),
            state.scheme,
          );
    if (onResult) {
      safe(() =>
        onResult({
          outcome: 'rejected',
          code: error.code,
          reason: error.reason,
          status: error.status,
          ...(state.scheme ? { scheme: state.scheme } : {}),
          durationMs: performance.now() - start,
          ...replayFill(),
        }),
      );
    }
    return error;
  };

  return (request) => {
    const start = onResult ? performance.now() : 0;
    const state: RequestState = { bound: [] };
    let result: MaybePromise<AuthResult>;
    try {
      result = authenticate(request, state);
    } catch (e) {
      throw failed(e, state, start);
    }
    if (!isPromiseLike(result)) return succeeded(result, state, start);
    return result.then(
      (accepted) => succeeded(accepted, state, start),
      (e: unknown) => {
        throw failed(e, state, start);
      },
    );
  };
}

/** The result of a request whose DPoP proof passed. */
function withProof(
  presented: Presented,
  claims: TokenClaims,
  state: RequestState,
  proof: VerifiedProof,
): AuthResult {
  state.bound.unshift('jkt');
  const headers: Record<string, string> = {};
  if (proof.nextNonce !== undefined) headers['DPoP-Nonce'] = proof.nextNonce;
  return { token: presented.token, claims, scheme: 'DPoP', headers, jkt: proof.jkt, proof };
}

/**
 * Refuses an access token also sent in the query string or a parsed form body (RFC 6750 §2:
 * one method only; RFC 9449 §7: DPoP tokens only in the `Authorization` header). @internal
 */
function tokenElsewhere(request: RequestLike, scheme: 'DPoP' | 'Bearer'): void {
  const url = request.url;
  const q = typeof url === 'string' ? url.indexOf('?') : -1;
  if (q >= 0 && /(?:^|&)access_token=/.test(url.slice(q + 1).split('#')[0]!)) {
    throw new DPoPError(
      'invalid_request',
      'token_in_query',
      `The access token must only be sent in the Authorization header (${scheme})`,
    );
  }
  const body = request.body;
  const type = body === undefined ? [] : headerValues(request, 'content-type');
  if (
    type.length === 1 &&
    /^application\/x-www-form-urlencoded\b/i.test(type[0]!) &&
    body !== null &&
    typeof body === 'object' &&
    !ArrayBuffer.isView(body) &&
    typeof (body as { getReader?: unknown }).getReader !== 'function' &&
    typeof (body as { pipe?: unknown }).pipe !== 'function' &&
    Object.prototype.hasOwnProperty.call(body, 'access_token')
  ) {
    throw new DPoPError(
      'invalid_request',
      'token_in_body',
      `The access token must only be sent in the Authorization header (${scheme})`,
    );
  }
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // metrics must never break authentication
  }
}

/**
 * The replay store's unit of fairness for a token (see `ProofExpectation.account`): its
 * subject, else its client, else none (the proof key then). An account costs an attacker a
 * registration; a key costs nothing.
 */
function accountOf(claims: TokenClaims): string | undefined {
  const {
    iss,
    sub,
    client_id: client,
  } = claims as {
    iss?: unknown;
    sub?: unknown;
    client_id?: unknown;
  };
  // (qualified by the issuer: a subject is unique per issuer, RFC 7519 §4.1.2)
  const issuer = typeof iss === 'string' ? iss : '';
  if (typeof sub === 'string' && sub.length > 0) return `sub:${issuer}\n${sub}`;
  if (typeof client === 'string' && client.length > 0) return `client:${issuer}\n${client}`;
  return undefined;
}
