/**
 * The authorization server's JWKS, fetched and kept for RFC 9068 access tokens, so that an
 * issuer's key rotation is picked up promptly and its outage is not the API's outage:
 *
 * - **Routine refresh** every `maxAge` seconds, in the background: requests keep using the keys
 *   held meanwhile (stale-while-revalidate), none waits for it.
 * - **A new `kid`** (the issuer rotated) is fetched at once, at most once per
 *   `unknownKeyInterval` seconds whatever the number of such tokens; requests with that `kid`
 *   wait for the one fetch in flight.
 * - **Outages** (an error status, a timeout, a refused connection, a body that is not a JWK
 *   Set): keys fetched before keep working for `staleIfError` seconds past `maxAge`; a token
 *   that needs a fetch meanwhile gets a 503 with `Retry-After` (`jwks_unavailable`), never a
 *   401 that would make clients discard good tokens. Failed fetches back off exponentially
 *   (2 s, 4 s, … `maxBackoff`), so a failing issuer gets one request per backoff period from
 *   this process, however many requests arrive.
 *
 * Bounded: one fetch in flight, a timeout, at most `MAX_JWKS_BYTES` read, redirects refused.
 * @module
 */
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet } from 'jose';
import type { DPoPError } from '../errors.ts';
import { refuse } from '../errors.ts';
import type { UpstreamEvent, UpstreamListener } from '../upstream.ts';
import { emitUpstream } from '../upstream.ts';
import { readJsonObject } from './http-body.ts';

/** Largest JWKS document read (a JWKS holds a few keys of a few hundred bytes each). */
const MAX_JWKS_BYTES = 256 * 1024;
/** First backoff after a failed fetch, in ms; doubled per consecutive failure. */
const FIRST_BACKOFF = 2000;

/** How the JWKS is kept (validated by the caller). @internal */
export interface JwksPolicy {
  /** ms before a fetch is aborted. */
  timeout: number;
  /** ms after a successful fetch before the keys are refreshed (in the background). */
  maxAge: number;
  /** ms between two fetches caused by an unknown `kid`. */
  unknownKeyInterval: number;
  /** ms past `maxAge` the keys held keep working while fetches fail. */
  staleIfError: number;
  /** Longest backoff between failed fetches, in ms. */
  maxBackoff: number;
  fetch: ((input: string, init: RequestInit) => Promise<Response>) | undefined;
  /** Told of every fetch once it ended (`createDPoPAuth`'s `onUpstream`). */
  onUpstream?: UpstreamListener | undefined;
  now: () => number;
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;
type JwksTrigger = Extract<UpstreamEvent, { kind: 'jwks' }>['trigger'];

/** A key getter for `jwtVerify` over the JWKS at `url` (see this module's summary). @internal */
export function remoteJwks(url: URL, policy: JwksPolicy): JWTVerifyGetKey {
  let keys: LocalSet | undefined;
  let fetchedAt = -Infinity; // last successful fetch
  let lastUnknownFetch = -Infinity;
  let failures = 0;
  let retryAt = 0; // no fetch before (backoff)
  let pending: Promise<LocalSet> | undefined;

  const unavailable = (cause?: unknown): DPoPError =>
    refuse('jwks_unavailable', {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil((retryAt - policy.now()) / 1000))) },
      ...(cause === undefined ? {} : { cause: safeCause(cause) }),
    });

  const { onUpstream } = policy;
  /** One fetch at a time (started for `trigger`); its failure starts (or extends) the backoff. */
  const refresh = (trigger: JwksTrigger): Promise<LocalSet> => {
    if (pending !== undefined) return pending;
    const started = onUpstream === undefined ? 0 : performance.now();
    const report = (result: 'ok' | 'error') => {
      if (onUpstream !== undefined)
        emitUpstream(onUpstream, {
          kind: 'jwks',
          result,
          trigger,
          durationMs: performance.now() - started,
        });
    };
    return (pending = fetchKeys(url, policy).then(
      (set) => {
        keys = set;
        fetchedAt = policy.now();
        failures = 0;
        retryAt = 0;
        pending = undefined;
        report('ok');
        return set;
      },
      (cause: unknown) => {
        failures++;
        retryAt = policy.now() + Math.min(policy.maxBackoff, FIRST_BACKOFF * 2 ** (failures - 1));
        pending = undefined;
        report('error');
        throw unavailable(cause);
      },
    ));
  };

  const fetchAllowed = (now: number) => pending !== undefined || now >= retryAt;

  return async (header, token) => {
    const now = policy.now();
    const held = keys;
    if (held === undefined) {
      // nothing fetched yet: this request needs the fetch
      if (!fetchAllowed(now)) throw unavailable();
      return (await refresh('initial'))(header, token);
    }
    const age = now - fetchedAt;
    if (age >= policy.maxAge) {
      if (age >= policy.maxAge + policy.staleIfError) {
        // too old to trust any longer: only a fresh fetch will do
        if (!fetchAllowed(now)) throw unavailable();
        return (await refresh('expired'))(header, token);
      }
      // stale: refresh in the background, answer from the keys held
      if (fetchAllowed(now)) refresh('refresh').catch(() => undefined);
    }
    try {
      return await held(header, token);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw error;
      // an unknown kid: the issuer may have rotated; one fetch per interval finds out
      if (pending !== undefined) return (await pending)(header, token);
      if (now - lastUnknownFetch < policy.unknownKeyInterval || now < retryAt) throw error;
      lastUnknownFetch = now;
      return (await refresh('unknown_key'))(header, token);
    }
  };
}

async function fetchKeys(url: URL, policy: JwksPolicy): Promise<LocalSet> {
  const response = await (policy.fetch ?? fetch)(url.href, {
    method: 'GET',
    headers: { accept: 'application/json, application/jwk-set+json' },
    redirect: 'manual',
    signal: AbortSignal.timeout(policy.timeout),
  });
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`The JWKS endpoint answered ${response.status}`);
  }
  const body = await readJsonObject(response, MAX_JWKS_BYTES);
  if (!Array.isArray(body.keys)) throw new TypeError('The JWKS has no "keys" list');
  return createLocalJWKSet(body as unknown as JSONWebKeySet);
}

/**
 * A cause to keep on a refusal: its name, code and message only. jose's errors carry the
 * token's claims (`payload`) and `util.inspect` prints a cause in full, so the original is
 * never kept: a logged error holds no token material. @internal
 */
export function safeCause(cause: unknown): Error {
  if (!(cause instanceof Error)) return new Error('non-Error failure');
  const kept = new Error(cause.message.slice(0, 200));
  kept.name = cause.name;
  const { code } = cause as { code?: unknown };
  if (typeof code === 'string') Object.assign(kept, { code });
  kept.stack = `${kept.name}: ${kept.message}`;
  return kept;
}
