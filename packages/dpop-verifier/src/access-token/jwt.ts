/**
 * RFC 9068 JWT access tokens: the JWKS options, validated once, and jose's failures as precise
 * refusals (RFC 6750 §3.1 `invalid_token` with a `reason`; an unreachable JWKS is a 503).
 * @module
 */
import type { JwtAccessTokenOptions } from '../access-token.ts';
import type { DPoPRejectReason } from '../errors.ts';
import { DPoPConfigError, DPoPError, refuse } from '../errors.ts';
import type { JwksPolicy } from './jwks.ts';
import { safeCause } from './jwks.ts';
import type { UpstreamListener } from '../upstream.ts';

/** The JWKS URL, which must be absolute http(s). @internal */
export function jwksUrl(value: URL | string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DPoPConfigError('accessToken.jwks', 'must be an absolute http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new DPoPConfigError('accessToken.jwks', 'must be an absolute http(s) URL');
  return url;
}

/** Seconds in `[min, max]` (or the default), as ms. */
function seconds(
  options: JwtAccessTokenOptions,
  name: keyof JwtAccessTokenOptions,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = options[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw new DPoPConfigError(
      `accessToken.${name}`,
      `must be a number of seconds from ${min} to ${max}`,
    );
  return value * 1000;
}

/** The JWKS policy from the JWT options (throws {@link DPoPConfigError}). @internal */
export function jwksPolicy(
  options: JwtAccessTokenOptions,
  onUpstream?: UpstreamListener,
): JwksPolicy {
  const timeout = options.jwksTimeout ?? 5000;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 1 || timeout > 60_000)
    throw new DPoPConfigError('accessToken.jwksTimeout', 'must be a number of ms from 1 to 60000');
  if (options.fetch !== undefined && typeof options.fetch !== 'function')
    throw new DPoPConfigError('accessToken.fetch', 'must be a function');
  return {
    timeout,
    maxAge: seconds(options, 'jwksMaxAge', 600, 1, 86_400),
    unknownKeyInterval: seconds(options, 'jwksUnknownKeyInterval', 2, 0, 3600),
    staleIfError: seconds(options, 'jwksStaleIfError', 86_400, 0, 30 * 86_400),
    maxBackoff: seconds(options, 'jwksMaxBackoff', 30, 1, 3600),
    fetch: options.fetch,
    now: Date.now,
    onUpstream,
  };
}

/** jose's error codes (and, for claim checks, the claim) as refusal reasons. */
const BY_CODE: ReadonlyMap<string, DPoPRejectReason> = new Map(
  Object.entries({
    ERR_JWT_EXPIRED: 'token_expired',
    ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'token_signature',
    ERR_JWKS_NO_MATCHING_KEY: 'token_unknown_key',
    ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'token_unknown_key',
    ERR_JOSE_ALG_NOT_ALLOWED: 'token_algorithm',
    ERR_JWS_INVALID: 'token_malformed',
    ERR_JWT_INVALID: 'token_malformed',
    ERR_JOSE_NOT_SUPPORTED: 'token_malformed',
    ERR_JWK_INVALID: 'token_unknown_key',
  } satisfies Record<string, DPoPRejectReason>),
);
const BY_CLAIM: ReadonlyMap<string, DPoPRejectReason> = new Map(
  Object.entries({
    nbf: 'token_not_yet_valid',
    iat: 'token_not_yet_valid',
    aud: 'token_audience',
    iss: 'token_issuer',
    typ: 'token_type',
    exp: 'token_malformed', // missing or not a number (an expired one is ERR_JWT_EXPIRED)
  } satisfies Record<string, DPoPRejectReason>),
);

/**
 * The refusal for a failed `jwtVerify`: a `DPoPError` from the key getter as it is (the JWKS
 * could not be fetched: 503), else `invalid_token` with the precise reason. The cause keeps only
 * jose's code and message (see {@link safeCause}: never the token's claims). @internal
 */
export function jwtRefusal(cause: unknown): DPoPError {
  if (cause instanceof DPoPError) return cause;
  const { code, claim } = (cause ?? {}) as { code?: unknown; claim?: unknown };
  const reason =
    (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && typeof claim === 'string'
      ? BY_CLAIM.get(claim)
      : typeof code === 'string'
        ? BY_CODE.get(code)
        : undefined) ?? 'token_invalid';
  return refuse(reason, { cause: safeCause(cause) });
}
