/**
 * Access tokens validated by RFC 7662 introspection at the authorization server.
 * @module
 */
import type { IntrospectionOptions, TokenClaims, TokenValidator } from '../access-token.ts';
import type { DPoPRejectReason } from '../errors.ts';
import { DPoPConfigError, DPoPError, refuse } from '../errors.ts';
import { FairSlots, peerSource } from '../fair-slots.ts';
import { Lru } from '../lru.ts';
import type { RequestLike } from '../request.ts';
import { accessTokenSha256 } from '../token-hash.ts';
import type { UpstreamListener } from '../upstream.ts';
import { emitUpstream } from '../upstream.ts';
import { readJsonObject } from './http-body.ts';
import { safeCause } from './jwks.ts';
import { tokenError } from './refusals.ts';

/** `token_type` values of access tokens (RFC 7662 §2.2 uses RFC 6749 §7.1 token types). */
/** Largest introspection response read (RFC 7662 §2.2: a small JSON object). */
const MAX_INTROSPECTION_BYTES = 64 * 1024;

const ACCESS_TOKEN_TYPES = new Set(['bearer', 'dpop', 'access_token', 'n_a']);

/** The introspection options once validated (throws {@link DPoPConfigError}). */
function introspectionSettings(options: IntrospectionOptions['introspection']) {
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
  return {
    endpoint,
    authorization: `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`)}`,
    issuer,
    audiences,
    ttl,
    negativeTtl,
    leeway,
    timeout,
    maxConcurrent,
    queueTimeout,
    precheck,
    sourceOf,
    fetch: options.fetch,
  };
}

type Settings = ReturnType<typeof introspectionSettings>;

/** Why introspected claims are not an acceptable access token here (RFC 7662 §2.2), if so. */
function problem(
  settings: Settings,
  body: TokenClaims,
  nowSec: number,
): DPoPRejectReason | undefined {
  const { leeway, issuer, audiences } = settings;
  if (body.active !== true) return 'token_inactive';
  if (body.exp !== undefined && typeof body.exp !== 'number') return 'token_malformed';
  if (body.exp !== undefined && body.exp + leeway <= nowSec) return 'token_expired';
  if (body.nbf !== undefined && (typeof body.nbf !== 'number' || body.nbf - leeway > nowSec))
    return 'token_not_yet_valid';
  const type = body.token_type;
  if (
    type !== undefined &&
    (typeof type !== 'string' || !ACCESS_TOKEN_TYPES.has(type.toLowerCase()))
  )
    return 'token_type';
  if (issuer !== false && body.iss !== issuer) return 'token_issuer';
  if (audiences !== undefined) {
    const aud = body.aud;
    const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!list.some((a) => audiences.includes(a as string))) return 'token_audience';
  }
  return undefined;
}

function unavailable(reason: 'introspection_busy' | 'introspection_unavailable', cause?: unknown) {
  return refuse(reason, {
    headers: { 'Retry-After': reason === 'introspection_busy' ? '1' : '5' },
    ...(cause === undefined ? {} : { cause: safeCause(cause) }),
  });
}

/** The caller's format precheck: a throwing check refuses, never escapes. */
function formatOk(precheck: (token: string) => boolean, token: string): boolean {
  try {
    return precheck(token) === true;
  } catch {
    return false;
  }
}

/** The fairness source of a request (bounded), `''` when the hook fails. */
function sourceFor(sourceOf: (request: RequestLike) => string, request: RequestLike): string {
  try {
    const source = sourceOf(request);
    return typeof source === 'string' ? source.slice(0, 256) : '';
  } catch {
    return '';
  }
}

/**
 * RFC 7662 token introspection as a validator: answers cached by token hash (positive until
 * `cacheTtl` or `exp`, negative for `negativeCacheTtl`), concurrent calls for one token
 * shared, outbound calls bounded by fair slots (known tokens first, strangers by source in
 * turn; see `fair-slots.ts`). @internal
 */
export function introspectionValidator(
  options: IntrospectionOptions['introspection'],
  onUpstream?: UpstreamListener,
): TokenValidator {
  const settings = introspectionSettings(options);
  const { endpoint, timeout, ttl, negativeTtl, precheck, sourceOf, maxConcurrent } = settings;
  const slots = new FairSlots({
    slots: maxConcurrent,
    reserved: Math.floor(maxConcurrent / 4),
    perSource: 4,
    maxWaiting: Math.max(64, 8 * maxConcurrent),
    maxWaitMs: settings.queueTimeout,
  });
  const cache =
    ttl > 0 ? new Lru<string, { claims: TokenClaims; until: number }>(10_000) : undefined;
  // Tokens introspected active before, until their exp: served first when their cache expired.
  const known = new Lru<string, number>(50_000);
  const refused =
    negativeTtl > 0 ? new Lru<string, { until: number; why: DPoPRejectReason }>(10_000) : undefined;

  /** One call, reported to `onUpstream` once it ended. */
  const introspect = (token: string, id: string, now: number): Promise<TokenClaims> => {
    if (onUpstream === undefined) return call(token, id, now);
    const started = performance.now();
    const report = (result: 'active' | 'inactive' | 'error') =>
      emitUpstream(onUpstream, {
        kind: 'introspection',
        result,
        durationMs: performance.now() - started,
      });
    return call(token, id, now).then(
      (claims) => {
        report('active');
        return claims;
      },
      (e: unknown) => {
        report(e instanceof DPoPError && e.status < 500 ? 'inactive' : 'error');
        throw e;
      },
    );
  };
  const call = async (token: string, id: string, now: number): Promise<TokenClaims> => {
    let response: Response;
    try {
      response = await (settings.fetch ?? fetch)(endpoint, {
        method: 'POST',
        headers: {
          authorization: settings.authorization,
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
    let body: TokenClaims;
    try {
      // RFC 7662 §2.2: a JSON object. Anything else is a broken server, not a bad token.
      body = (await readJsonObject(response, MAX_INTROSPECTION_BYTES)) as TokenClaims;
    } catch (cause) {
      throw unavailable('introspection_unavailable', cause);
    }
    const why = problem(settings, body, now / 1000);
    if (why !== undefined) {
      refused?.set(id, { until: now + negativeTtl, why });
      throw refuse(why);
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
    const refusal = refused?.get(id);
    if (refusal !== undefined && refusal.until > now) throw refuse(refusal.why);
    return inFlight.get(id);
  };
  const validate: TokenValidator = async (token, request, tokenHash) => {
    if (precheck !== undefined && !formatOk(precheck, token))
      throw tokenError('The access token is not in the issuer format');
    const id = await (tokenHash ?? accessTokenSha256(token));
    const early = answered(id, Date.now());
    if (early !== undefined) return early;
    const knownUntil = known.get(id);
    const isKnown = knownUntil !== undefined && knownUntil > Date.now();
    let granted = slots.acquire(sourceFor(sourceOf, request), isKnown);
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
