import { accessTokenSha256 } from './token-hash.ts';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import { DPoPConfigError, DPoPError } from './errors.ts';
import { FairSlots, peerSource } from './fair-slots.ts';
import { Lru } from './lru.ts';
import type { MaybePromise } from './maybe-async.ts';
import { isPromiseLike } from './maybe-async.ts';
import type { RequestLike } from './request.ts';

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
  /** The AS's JWKS: its URL (fetched and cached by jose), or the key set itself. */
  jwks: URL | string | JSONWebKeySet | JWTVerifyGetKey;
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

function tokenError(description: string, cause?: unknown): DPoPError {
  return new DPoPError(
    'invalid_token',
    'token_invalid',
    description,
    cause === undefined ? {} : { cause },
  );
}

function asClaims(value: unknown): TokenClaims {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw tokenError('The access token is invalid');
  return value as TokenClaims;
}

function jwtValidator(options: JwtAccessTokenOptions): TokenValidator {
  const { issuer, audience, jwks } = options;
  if (typeof issuer !== 'string' || issuer.length === 0)
    throw new DPoPConfigError('accessToken.issuer', 'must be a non-empty string');
  if (typeof audience !== 'string' && !(Array.isArray(audience) && audience.length > 0)) {
    throw new DPoPConfigError('accessToken.audience', 'must be a string or a non-empty list');
  }
  let getKey: JWTVerifyGetKey;
  if (typeof jwks === 'function') getKey = jwks;
  else if (jwks instanceof URL || typeof jwks === 'string')
    getKey = createRemoteJWKSet(new URL(jwks));
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
      if (
        (cause as { code?: string })?.code === 'ERR_JWKS_TIMEOUT' ||
        (cause as Error)?.name === 'TypeError'
      ) {
        // JWKS unreachable and no usable cached key: fail closed, as a server error.
        throw new DPoPError(
          'server_error',
          'token_invalid',
          'The access token cannot be validated right now',
          { cause, headers: { 'Retry-After': '5' } },
        );
      }
      throw tokenError('The access token is invalid', cause);
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

/** `token_type` values of access tokens (RFC 7662 §2.2 uses RFC 6749 §7.1 token types). */
const ACCESS_TOKEN_TYPES = new Set(['bearer', 'dpop', 'access_token', 'n_a']);

function introspectionValidator(options: IntrospectionOptions['introspection']): TokenValidator {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('accessToken.introspection', 'must be an object');
  const { endpoint, clientId, clientSecret, issuer, audience } = options;
  try {
    new URL(endpoint);
  } catch {
    throw new DPoPConfigError('accessToken.introspection.endpoint', 'must be an absolute URL');
  }
  if (typeof clientId !== 'string' || typeof clientSecret !== 'string') {
    throw new DPoPConfigError(
      'accessToken.introspection',
      'needs clientId and clientSecret strings',
    );
  }
  if (issuer !== false && (typeof issuer !== 'string' || issuer.length === 0)) {
    throw new DPoPConfigError(
      'accessToken.introspection.issuer',
      'is required: the expected iss, or false to skip the check knowingly',
    );
  }
  const audiences =
    audience === false
      ? undefined
      : typeof audience === 'string' && audience.length > 0
        ? [audience]
        : Array.isArray(audience) &&
            audience.length > 0 &&
            audience.every((a) => typeof a === 'string' && a.length > 0)
          ? [...(audience as readonly string[])]
          : null;
  if (audiences === null) {
    throw new DPoPConfigError(
      'accessToken.introspection.audience',
      'is required: the expected aud (a string or a non-empty list), or false to skip the check knowingly',
    );
  }
  const ttl = (options.cacheTtl ?? 30) * 1000;
  const negativeTtl = (options.negativeCacheTtl ?? 10) * 1000;
  const leeway = options.clockTolerance ?? 5;
  const timeout = options.timeout ?? 5000;
  const maxConcurrent = options.maxConcurrent ?? 32;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1 || maxConcurrent > 10_000)
    throw new DPoPConfigError(
      'accessToken.introspection.maxConcurrent',
      'must be an integer from 1 to 10000',
    );
  for (const [name, value] of [
    ['cacheTtl', ttl],
    ['negativeCacheTtl', negativeTtl],
    ['clockTolerance', leeway],
    ['timeout', timeout],
  ] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      throw new DPoPConfigError(`accessToken.introspection.${name}`, 'must be a number >= 0');
  }
  const queueTimeout = options.queueTimeout ?? 1000;
  if (typeof queueTimeout !== 'number' || !Number.isFinite(queueTimeout) || queueTimeout < 0)
    throw new DPoPConfigError('accessToken.introspection.queueTimeout', 'must be a number >= 0');
  const { precheck, sourceOf = peerSource } = options;
  if (precheck !== undefined && typeof precheck !== 'function')
    throw new DPoPConfigError('accessToken.introspection.precheck', 'must be a function');
  if (typeof sourceOf !== 'function')
    throw new DPoPConfigError('accessToken.introspection.sourceOf', 'must be a function');
  const slots = new FairSlots({
    slots: maxConcurrent,
    reserved: Math.floor(maxConcurrent / 4),
    perSource: 4,
    maxWaiting: Math.max(64, 8 * maxConcurrent),
    maxWaitMs: queueTimeout,
  });
  const cache =
    ttl > 0 ? new Lru<string, { claims: TokenClaims; until: number }>(10_000) : undefined;
  // Tokens introspected active before, until their exp: served first when their cache expired.
  const known = new Lru<string, number>(50_000);
  const refused = negativeTtl > 0 ? new Lru<string, number>(10_000) : undefined;
  const authorization = `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`)}`;

  /** Why introspected claims are not an acceptable access token here, or undefined. */
  const problem = (body: TokenClaims, nowSec: number): string | undefined => {
    if (body.active !== true) return 'The access token is not active';
    if (body.exp !== undefined && (typeof body.exp !== 'number' || body.exp + leeway <= nowSec))
      return 'The access token has expired';
    if (body.nbf !== undefined && (typeof body.nbf !== 'number' || body.nbf - leeway > nowSec))
      return 'The access token is not valid yet';
    const type = body.token_type;
    if (
      type !== undefined &&
      (typeof type !== 'string' || !ACCESS_TOKEN_TYPES.has(type.toLowerCase()))
    )
      return 'The token is not an access token';
    if (issuer !== false && body.iss !== issuer) return 'The access token has the wrong issuer';
    if (audiences !== undefined) {
      const aud = body.aud;
      const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!list.some((a) => audiences.includes(a as string)))
        return 'The access token is not meant for this resource';
    }
    return undefined;
  };

  const unavailable = (
    reason: 'introspection_busy' | 'introspection_unavailable',
    cause?: unknown,
  ) =>
    new DPoPError('server_error', reason, 'The access token cannot be validated right now', {
      headers: { 'Retry-After': reason === 'introspection_busy' ? '1' : '5' },
      ...(cause === undefined ? {} : { cause }),
    });

  const introspect = async (token: string, id: string, now: number): Promise<TokenClaims> => {
    let response: Response;
    try {
      response = await (options.fetch ?? fetch)(endpoint, {
        method: 'POST',
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(timeout),
      });
    } catch (cause) {
      throw unavailable('introspection_unavailable', cause);
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw unavailable('introspection_unavailable');
    }
    const body = asClaims(await response.json().catch(() => null));
    const why = problem(body, now / 1000);
    if (why !== undefined) {
      refused?.set(id, now + negativeTtl);
      throw tokenError(why);
    }
    const expires = typeof body.exp === 'number' ? body.exp * 1000 : now + 3600_000;
    known.set(id, expires);
    if (cache) cache.set(id, { claims: body, until: Math.min(now + ttl, expires) });
    return body;
  };

  // Calls in flight, by token hash: concurrent requests with one new token share a call.
  const inFlight = new Map<string, Promise<TokenClaims>>();
  /** What the caches already say of a token: its claims, a refusal, or a call in flight. */
  const answered = (id: string, now: number): Promise<TokenClaims> | TokenClaims | undefined => {
    const hit = cache?.get(id);
    if (hit !== undefined && hit.until > now) return hit.claims;
    const refusedUntil = refused?.get(id);
    if (refusedUntil !== undefined && refusedUntil > now)
      throw tokenError('The access token is not active');
    return inFlight.get(id);
  };
  const formatOk = (token: string): boolean => {
    try {
      return precheck!(token) === true;
    } catch {
      return false; // a throwing check refuses, never escapes
    }
  };
  const sourceFor = (request: RequestLike): string => {
    try {
      const source = sourceOf(request);
      return typeof source === 'string' ? source.slice(0, 256) : '';
    } catch {
      return '';
    }
  };
  const validate: TokenValidator = async (token, request, tokenHash) => {
    if (precheck !== undefined && !formatOk(token))
      throw tokenError('The access token is not in the issuer format');
    const id = await (tokenHash ?? accessTokenSha256(token));
    const early = answered(id, Date.now());
    if (early !== undefined) return early;
    const knownUntil = known.get(id);
    const isKnown = knownUntil !== undefined && knownUntil > Date.now();
    let granted = slots.acquire(sourceFor(request), isKnown);
    if (granted !== true && granted !== false) granted = await granted;
    if (!granted) throw unavailable('introspection_busy');
    // while it waited, another request may have validated this token or started its call
    let late: Promise<TokenClaims> | TokenClaims | undefined;
    try {
      late = answered(id, Date.now());
    } catch (e) {
      slots.release(isKnown);
      throw e;
    }
    if (late !== undefined) {
      slots.release(isKnown);
      return late;
    }
    const call = introspect(token, id, Date.now()).finally(() => {
      inFlight.delete(id);
      slots.release(isKnown);
    });
    inFlight.set(id, call);
    return call;
  };
  validate.remote = true;
  return validate;
}

/** Builds the access-token validator once, from the option. @internal */
export function createTokenValidator(option: AccessTokenOption): TokenValidator {
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
  if ('introspection' in option) return introspectionValidator(option.introspection);
  return jwtValidator(option);
}
