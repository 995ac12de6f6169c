import { accessTokenSha256 } from './token-hash.ts';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { DPoPConfigError, DPoPError } from './errors.ts';
import { remoteJwks } from './access-token/jwks.ts';
import { jwksPolicy, jwksUrl, jwtRefusal } from './access-token/jwt.ts';
import { asClaims, tokenError } from './access-token/refusals.ts';
import { introspectionValidator } from './access-token/introspection.ts';
import { Lru } from './lru.ts';
import type { OptionNames } from './options.ts';
import { rejectUnknownOptions } from './options.ts';
import type { MaybePromise } from './maybe-async.ts';
import { isPromiseLike } from './maybe-async.ts';
import type { RequestLike } from './request.ts';
import type { UpstreamListener } from './upstream.ts';

/** Claims of a validated access token. `cnf` carries the binding (RFC 7800, 9449 §6, 8705 §3). */
export interface TokenClaims {
  cnf?: { jkt?: string; 'x5t#S256'?: string; [member: string]: unknown };
  [claim: string]: unknown;
}

/**
 * Validates an access token and returns its claims; throw (anything) to reject it as
 * `invalid_token`. Use it for opaque tokens in your own store, or any format popkit does not
 * validate itself.
 */
export type AccessTokenValidator = (
  token: string,
  request: RequestLike,
) => TokenClaims | Promise<TokenClaims>;

/** RFC 9068 JWT access tokens, validated with jose. */
export interface JwtAccessTokenOptions {
  issuer: string;
  audience: string | readonly string[];
  /**
   * The AS's JWKS: its URL (fetched and kept as the `jwks*` options say), the key set itself,
   * or your own key resolver (jose's `JWTVerifyGetKey`: `(protectedHeader, token) => key`,
   * for keys from a KMS, a file or another cache; a `DPoPError` it throws is answered as is).
   */
  jwks: URL | string | JSONWebKeySet | JWTVerifyGetKey;
  /** Ms before a JWKS fetch is aborted. Default 5000. */
  jwksTimeout?: number;
  /**
   * Seconds after a successful JWKS fetch before it is refreshed, in the background (requests
   * keep using the keys held meanwhile). Default 600.
   */
  jwksMaxAge?: number;
  /**
   * Least seconds between two JWKS fetches caused by tokens with an unknown `kid` (the issuer
   * rotated its key, or someone sends made-up `kid`s): a new key is picked up on its first
   * token, and a flood of unknown `kid`s costs the issuer one request per interval. Default 2.
   */
  jwksUnknownKeyInterval?: number;
  /**
   * Seconds past `jwksMaxAge` that the keys held keep validating tokens while the JWKS cannot be
   * fetched (stale-if-error): an issuer outage is not an API outage. After it, tokens get 503
   * `jwks_unavailable` until a fetch succeeds. Default 86400 (one day); 0 stops at `jwksMaxAge`.
   */
  jwksStaleIfError?: number;
  /**
   * Longest seconds between two fetches while the JWKS fails (the backoff doubles from 2 s up
   * to this); requests needing a fetch meanwhile get 503 with `Retry-After`. Default 30.
   */
  jwksMaxBackoff?: number;
  /** The `fetch` used for the JWKS (a proxy agent, tests). Default the global `fetch`. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Allowed signing algorithms. Default RS256, PS256, ES256, EdDSA. */
  algorithms?: readonly string[];
  /** Seconds of leeway on `exp`/`nbf`. Default 5. */
  clockTolerance?: number;
  /** Require `typ: at+jwt` (RFC 9068 §4). Default true. */
  requireTyp?: boolean;
  /** Validated tokens kept (by hash) until they expire, so a repeated token costs no verify. Default 10,000; 0 disables. */
  cacheSize?: number;
}

/** RFC 7662 token introspection. */
export interface IntrospectionOptions {
  introspection: {
    endpoint: string;
    clientId: string;
    clientSecret: string;
    /**
     * The `iss` the token must carry. Required: pass `false` to skip the check knowingly (an
     * introspection endpoint that omits `iss`).
     */
    issuer: string | false;
    /**
     * The `aud` the token must carry (one of them, when a list). Required: pass `false` to skip
     * the check knowingly. Without it, a token issued for another API is accepted here.
     */
    audience: string | readonly string[] | false;
    /** Seconds of leeway on `exp`/`nbf`. Default 5. */
    clockTolerance?: number;
    /** Seconds an active result is reused (never past `exp`). Default 30; 0 disables. */
    cacheTtl?: number;
    /**
     * Seconds an inactive or refused token is remembered (by hash), so a flood of garbage tokens
     * does not fan out into introspection calls. Default 10; 0 disables. At most 10,000 kept.
     */
    negativeCacheTtl?: number;
    /** Abort the call after this many ms. Default 5000. */
    timeout?: number;
    /**
     * Most introspection calls in flight at once (distinct tokens; concurrent requests with the
     * same token share one call). Beyond it, requests with tokens not already cached get a 503
     * with `Retry-After` (reason `introspection_busy`) rather than queueing without bound, so
     * a flood of fresh tokens cannot pile work on the authorization server or on this one.
     * Tokens already validated are served from the cache meanwhile. Default 32.
     *
     * The slots are shared fairly: a quarter is kept for tokens introspected active before
     * (returning users, whose cached result expired); a request that finds no slot waits in its
     * source's line (at most 4 per source, an IPv6 source by its /48, `queueTimeout` ms), and freed slots go to the sources
     * in turn, so one source flooding fresh garbage tokens gets one share of the calls, not all.
     */
    maxConcurrent?: number;
    /** Most ms a request waits for an introspection slot before its 503. Default 1000. */
    queueTimeout?: number;
    /**
     * The source of a request, for the fair shares of `maxConcurrent`. Default: the peer address
     * of the connection (IPv6 by /48). Behind a proxy, read the client address the proxy sets
     * (and only a header it always overwrites).
     */
    sourceOf?: (request: RequestLike) => string;
    /**
     * A cheap check of the token's format before any call, for authorization servers whose
     * tokens carry a prefix or a checksum (`false` or a throw: refused as `invalid_token`
     * without an introspection call). Garbage then costs an attacker a 401 and you nothing.
     */
    precheck?: (token: string) => boolean;
    fetch?: (input: string, init: RequestInit) => Promise<Response>;
  };
}

/** The names of {@link JwtAccessTokenOptions}, for the unknown-option check. @internal */
export const JWT_OPTION_NAMES = {
  issuer: true,
  audience: true,
  jwks: true,
  algorithms: true,
  clockTolerance: true,
  requireTyp: true,
  cacheSize: true,
  jwksTimeout: true,
  jwksMaxAge: true,
  jwksUnknownKeyInterval: true,
  jwksStaleIfError: true,
  jwksMaxBackoff: true,
  fetch: true,
} as const satisfies OptionNames<JwtAccessTokenOptions>;

/** The names of `IntrospectionOptions['introspection']`, for the unknown-option check. @internal */
export const INTROSPECTION_OPTION_NAMES = {
  endpoint: true,
  clientId: true,
  clientSecret: true,
  issuer: true,
  audience: true,
  clockTolerance: true,
  cacheTtl: true,
  negativeCacheTtl: true,
  timeout: true,
  maxConcurrent: true,
  queueTimeout: true,
  sourceOf: true,
  precheck: true,
  fetch: true,
} as const satisfies OptionNames<IntrospectionOptions['introspection']>;

/** How `createDPoPAuth` validates access tokens. */
export type AccessTokenOption = AccessTokenValidator | JwtAccessTokenOptions | IntrospectionOptions;

/**
 * @internal `remote`: validating a token not yet cached costs an outbound call (introspection),
 * dearer than a proof signature, so callers check the proof first.
 */
export type TokenValidator = ((
  token: string,
  request: RequestLike,
  /** The token's hash, when the caller has it (the cache key). */
  tokenHash?: string | Promise<string>,
) => MaybePromise<TokenClaims>) & {
  remote?: boolean;
};

function jwtValidator(
  options: JwtAccessTokenOptions,
  onUpstream: UpstreamListener | undefined,
): TokenValidator {
  const { issuer, audience, jwks } = options;
  if (typeof issuer !== 'string' || issuer.length === 0)
    throw new DPoPConfigError('accessToken.issuer', 'must be a non-empty string');
  if (typeof audience !== 'string' && !(Array.isArray(audience) && audience.length > 0)) {
    throw new DPoPConfigError('accessToken.audience', 'must be a string or a non-empty list');
  }
  let getKey: JWTVerifyGetKey;
  if (typeof jwks === 'function') getKey = jwks;
  else if (jwks instanceof URL || typeof jwks === 'string')
    getKey = remoteJwks(jwksUrl(jwks), jwksPolicy(options, onUpstream));
  else if (jwks !== null && typeof jwks === 'object' && Array.isArray((jwks as JSONWebKeySet).keys))
    getKey = createLocalJWKSet(jwks as JSONWebKeySet);
  else
    throw new DPoPConfigError('accessToken.jwks', 'must be a JWKS URL, a JWK Set, or a key getter');
  const algorithms = [...(options.algorithms ?? ['RS256', 'PS256', 'ES256', 'EdDSA'])];
  if (algorithms.some((a) => typeof a !== 'string' || a === 'none' || a.startsWith('HS'))) {
    throw new DPoPConfigError('accessToken.algorithms', 'must list asymmetric algorithms only');
  }
  const clockTolerance = options.clockTolerance ?? 5;
  const verifyOptions = {
    issuer,
    audience: typeof audience === 'string' ? audience : [...audience],
    algorithms,
    clockTolerance,
    requiredClaims: ['exp'],
    ...(options.requireTyp === false ? {} : { typ: 'at+jwt' }),
  };
  const cacheSize = options.cacheSize ?? 10_000;
  const cache =
    cacheSize > 0
      ? new Lru<string, { claims: TokenClaims; exp: number; nbf: number }>(cacheSize)
      : undefined;
  const verifyJwt = async (token: string, id: string): Promise<TokenClaims> => {
    try {
      const { payload } = await jwtVerify(token, getKey, verifyOptions);
      const claims = asClaims(payload);
      cache?.set(id, {
        claims,
        exp: payload.exp!,
        nbf: typeof payload.nbf === 'number' ? payload.nbf : 0,
      });
      return claims;
    } catch (cause) {
      throw jwtRefusal(cause);
    }
  };
  // A token validated before and still within exp/nbf is returned at once (no promise).
  const cached = (token: string, id: string): MaybePromise<TokenClaims> => {
    const hit = cache!.get(id);
    if (hit !== undefined) {
      const nowSec = Date.now() / 1000;
      if (hit.exp + clockTolerance > nowSec && hit.nbf - clockTolerance <= nowSec)
        return hit.claims;
      cache!.delete(id);
    }
    return verifyJwt(token, id);
  };
  return (token, _request, tokenHash) => {
    if (cache === undefined) return verifyJwt(token, '');
    const id = tokenHash ?? accessTokenSha256(token);
    return typeof id === 'string' ? cached(token, id) : id.then((hash) => cached(token, hash));
  };
}

/**
 * Builds the access-token validator once, from the option; `onUpstream` is told of every call
 * to the authorization server (JWKS fetches, introspection calls). @internal
 */
export function createTokenValidator(
  option: AccessTokenOption,
  onUpstream?: UpstreamListener,
): TokenValidator {
  if (typeof option === 'function') {
    const refused = (cause: unknown): DPoPError =>
      cause instanceof DPoPError ? cause : tokenError('The access token is invalid', cause);
    // (a hook that answers synchronously is used without a promise)
    return (token, request) => {
      let claims: MaybePromise<unknown>;
      try {
        claims = option(token, request);
      } catch (cause) {
        throw refused(cause);
      }
      if (!isPromiseLike(claims)) return asClaims(claims);
      return Promise.resolve(claims).then(asClaims, (cause: unknown) => {
        throw refused(cause);
      });
    };
  }
  if (option === null || typeof option !== 'object') {
    throw new DPoPConfigError(
      'accessToken',
      'must be a validator function, JWT options or introspection options',
    );
  }
  if ('introspection' in option) {
    rejectUnknownOptions(option, { introspection: true }, 'introspection', 'accessToken.');
    const { introspection } = option;
    if (introspection !== null && typeof introspection === 'object')
      rejectUnknownOptions(
        introspection,
        INTROSPECTION_OPTION_NAMES,
        'introspection',
        'accessToken.introspection.',
      );
    return introspectionValidator(introspection, onUpstream);
  }
  rejectUnknownOptions(option, JWT_OPTION_NAMES, 'JWT access tokens', 'accessToken.');
  return jwtValidator(option, onUpstream);
}
