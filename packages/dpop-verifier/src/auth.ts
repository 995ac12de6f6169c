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
import type { PreparedProof, VerifiedProof, VerifyProofOptions } from './verify-proof.ts';
import { checkKeyBinding, createProofVerifier } from './verify-proof.ts';

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
  const proofs = createProofVerifier({
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

  async function authenticate(request: RequestLike, state: RequestState): Promise<AuthResult> {
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
    const url = scheme === 'DPoP' ? resolveUrl(request) : '';
    const perRequest =
      scheme === 'DPoP' && typeof requireNonce === 'function'
        ? { requireNonce: requireNonce(request) }
        : {};
    // With a remote validator (introspection) a call costs more than a signature: the proof is
    // checked first (signature, claims, nonce, ath for this very token), so each outbound call
    // needs a valid fresh proof; the key binding is compared and the jti recorded afterwards.
    let prepared: PreparedProof | undefined;
    if (scheme === 'DPoP' && validateToken.remote === true) {
      try {
        prepared = await proofs.prepare(dpopHeaders[0]!, {
          method: request.method,
          url,
          accessToken: token,
          ...perRequest,
        });
      } catch (e) {
        throw proofFailure(e, scheme);
      }
    }
    let claims: TokenClaims;
    try {
      claims = await validateToken(token, request);
    } catch (e) {
      throw reject(
        e instanceof DPoPError
          ? e
          : new DPoPError('invalid_token', 'token_invalid', 'The access token is invalid'),
        scheme,
      );
    }
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
    const bound = state.bound;
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
    const headers: Record<string, string> = {};
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
    // The certificate binding first: a comparison, cheaper than a proof signature.
    if (x5t !== undefined) {
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
      let presented: string | undefined;
      try {
        presented = certificate === undefined ? undefined : await certificate(request);
      } catch (cause) {
        // Certificate information the client influences (a proxy header, the presented
        // certificate) that cannot be used: a 401 with a reason, never a 5xx on demand.
        throw reject(
          new DPoPError(
            'invalid_token',
            'certificate_unusable',
            'The client certificate information cannot be used',
            { cause },
          ),
          scheme,
        );
      }
      if (presented === undefined) {
        throw reject(
          new DPoPError(
            'invalid_token',
            'certificate_missing',
            'This access token requires the client certificate it is bound to',
          ),
          scheme,
        );
      }
      if (typeof presented !== 'string' || !timingSafeEqual(presented, x5t)) {
        throw reject(
          new DPoPError(
            'invalid_token',
            'certificate_mismatch',
            'The access token is not bound to the presented client certificate',
          ),
          scheme,
        );
      }
      bound.push('x5t#S256');
    }
    let proof: VerifiedProof | undefined;
    if (scheme === 'DPoP') {
      try {
        if (prepared === undefined) {
          proof = await proofs(dpopHeaders[0]!, {
            method: request.method,
            url,
            accessToken: token,
            jkt: jkt as string,
            ...perRequest,
          });
        } else {
          checkKeyBinding(prepared.proof.jkt, jkt);
          await prepared.commit();
          proof = prepared.proof;
        }
      } catch (e) {
        throw proofFailure(e, scheme);
      }
      bound.unshift('jkt');
      if (proof.nextNonce !== undefined) headers['DPoP-Nonce'] = proof.nextNonce;
    }
    const result: AuthResult = { token, claims, scheme, headers };
    if (proof !== undefined) {
      result.jkt = proof.jkt;
      result.proof = proof;
    }
    return result;
  }

  return {
    async verify(request) {
      const start = performance.now();
      const state: RequestState = { bound: [] };
      try {
        const result = await authenticate(request, state);
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
      } catch (e) {
        // Errors not yet shaped for this resource server (e.g. a rejected Host) get its headers.
        const error =
          e instanceof DPoPError
            ? e.headers['Cache-Control']
              ? e
              : reject(e, state.scheme)
            : reject(
                new DPoPError(
                  'server_error',
                  'internal_error',
                  'The request could not be verified',
                  { cause: e },
                ),
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
        throw error;
      }
    },
  };
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
