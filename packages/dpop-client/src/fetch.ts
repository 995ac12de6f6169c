import type { DPoPClientError } from './errors.ts';
import { invalidType, rejectUnknownOptions } from './errors.ts';
import type { OptionNames } from './options.ts';
import { normalizeMethod, wireOrigin } from './htu.ts';
import {
  BODY_HEADERS,
  CROSS_ORIGIN_DROPPED,
  MAX_REDIRECTS,
  browserFollows,
  isOneShot,
  nextHop,
  notReplayable,
  redirectError,
} from './redirect.ts';
import type { DPoPSessionOptions, ResponseView } from './session.ts';
import { DPoPSession, SESSION_OPTION_NAMES, boundedJsonError } from './session.ts';
import type { DPoPKey } from './signer.ts';
import { parseHttpDate } from './http-date.ts';
import type { OnTokenExpired } from './token-expiry.ts';
import {
  TokenRefresher,
  invalidTokenChallenge,
  jwtExp,
  saysExpired,
  tokenExpired,
} from './token-expiry.ts';

/** `RequestInit` plus the access token to send as `Authorization: DPoP <token>`. */
export interface DPoPRequestInit extends RequestInit {
  /** DPoP-bound access token; sets `Authorization: DPoP …` and the proof's `ath`. */
  accessToken?: string;
}

/** A `fetch`-compatible function that signs every request with DPoP. */
export type DPoPFetch = (
  input: string | URL | Request,
  init?: DPoPRequestInit,
) => Promise<Response>;

/** Any `fetch` implementation: the global one, undici's, a test double, ky's or ofetch's input. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Options of {@link createDPoPFetch}. */
export interface DPoPFetchOptions extends DPoPSessionOptions {
  /** The fetch to wrap. Default: `globalThis.fetch` at call time. */
  fetch?: FetchLike;
  /**
   * Called when a request that carried an access token is refused with `401` and
   * `error="invalid_token"` (RFC 6750 §3.1, in the DPoP or a Bearer challenge): return a new
   * access token bound to the same key (after a refresh-token grant, say) and the request is
   * sent once more with it and a new proof; return nothing to give up. At most one call per
   * request; requests refused with the same token share one call in flight (so a rotating
   * refresh token is used once). Without it, or when it returns nothing, a refusal known to be
   * an expiry ({@link TokenExpiredContext.expired}) throws a {@link DPoPClientError}
   * `ERR_DPOP_TOKEN_EXPIRED`; any other `invalid_token` 401 is returned as is.
   */
  onTokenExpired?: OnTokenExpired;
}

/** The names of {@link DPoPFetchOptions}, for the unknown-option check. @internal */
const FETCH_OPTION_NAMES = {
  ...SESSION_OPTION_NAMES,
  fetch: true,
  onTokenExpired: true,
} as const satisfies OptionNames<DPoPFetchOptions>;

const AUTH_DPOP = /^dpop[ \t]+(\S+)[ \t]*$/i;

function isRequest(value: unknown): value is Request {
  return (
    (typeof Request !== 'undefined' && value instanceof Request) ||
    (typeof value === 'object' &&
      value !== null &&
      !(value instanceof URL) &&
      typeof (value as Request).url === 'string' &&
      typeof (value as Request).method === 'string' &&
      typeof (value as Request).headers === 'object')
  );
}

/**
 * Wraps `fetch` so every request carries a fresh DPoP proof (RFC 9449 §4, §7) and the
 * protocol's round trips happen for you:
 *
 * - `Authorization: DPoP <token>` from `init.accessToken` (or an existing `DPoP` authorization
 *   header), with the proof's `ath`;
 * - the latest `DPoP-Nonce` kept per origin (bounded, pluggable {@link NonceStore});
 * - exactly one retry when the server answers `use_dpop_nonce` with a new nonce: a 401 whose
 *   `WWW-Authenticate` holds a DPoP challenge (among others, any case), or a 400 JSON
 *   `{"error":"use_dpop_nonce"}` from a token endpoint (RFC 9449 §8, §9);
 * - the server's clock offset learned from `Date` when a proof is rejected, applied to `iat`
 *   (with the one retry) for that origin from then on (at most 24 hours);
 * - bodies replayed safely (strings, bytes, `Blob`, `FormData`, `URLSearchParams`, and a
 *   `Request`'s body buffered once). A `ReadableStream` body is sent once: if a retry is needed
 *   a {@link DPoPClientError} `ERR_DPOP_BODY_NOT_REPLAYABLE` carries the response, and the new
 *   nonce is already stored for the next call;
 * - redirects followed here, outside browsers, with the Fetch standard's rules (at most 20; a
 *   303, or a 301/302 of a `POST`, becomes a body-less `GET`; 307/308 keep method and body): a
 *   new proof for each hop on the request's origin (`htm` and `htu` of that hop), and once the
 *   chain leaves the origin no `DPoP` and no `Authorization` (nor `Cookie`), even if it comes
 *   back. `redirect: 'manual'` and `'error'` are passed to `fetch` as given. In a browser the
 *   browser follows redirects (`redirect: 'manual'` is unreadable there; see the README);
 * - state learned only from the origin that answered a request carrying its proof: a nonce or
 *   `Date` from any other origin (a redirect target) is ignored;
 * - an expired access token: a 401 `invalid_token` calls `options.onTokenExpired` once for a new
 *   token (shared by concurrent requests) and sends the request again with it; an expiry no
 *   hook fixes throws `ERR_DPOP_TOKEN_EXPIRED`;
 * - never loops: a second `use_dpop_nonce`, or one with the nonce just sent, is returned as is;
 * - `init.signal` (or the `Request`'s) is honoured on every attempt.
 *
 * @example
 * ```ts
 * const dpopFetch = createDPoPFetch(keyPair);
 * const res = await dpopFetch('https://api.example.com/orders', { accessToken });
 * // with ky: ky.create({ fetch: dpopFetch }); with undici: createDPoPFetch(k, { fetch: undici.fetch })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-8
 * @see https://fetch.spec.whatwg.org/#http-redirect-fetch
 */
export function createDPoPFetch(key: DPoPKey, options: DPoPFetchOptions = {}): DPoPFetch {
  if (options !== null && typeof options === 'object')
    rejectUnknownOptions(options, FETCH_OPTION_NAMES, 'createDPoPFetch');
  const session = new DPoPSession(key, options);
  const custom = options.fetch;
  if (custom !== undefined && typeof custom !== 'function')
    throw invalidType('options.fetch', 'a function');
  const hook = options.onTokenExpired;
  if (hook !== undefined && typeof hook !== 'function')
    throw invalidType('options.onTokenExpired', 'a function');
  const refresher = hook === undefined ? undefined : new TokenRefresher(hook);

  return async function dpopFetch(input, init = {}) {
    const fetchImpl: FetchLike = custom ?? globalThis.fetch;
    const { accessToken: explicitToken, ...rest } = init;
    let url: string;
    let base: Request | undefined;
    let method: string;
    let headers: Headers;
    let body: BodyInit | null | undefined = rest.body;
    if (isRequest(input)) {
      base = input;
      url = input.url;
      method = rest.method ?? input.method;
      headers = new Headers(rest.headers ?? input.headers);
      if (body === undefined && input.body !== null) body = await input.arrayBuffer();
    } else {
      if (typeof input !== 'string' && !(input instanceof URL))
        throw invalidType('input', 'a string, URL or Request');
      url = String(input);
      method = rest.method ?? 'GET';
      headers = new Headers(rest.headers);
    }
    method = normalizeMethod(method, 'init.method');
    const origin = wireOrigin(url, 'input'); // WHATWG origin even where URL is a polyfill

    let accessToken = explicitToken;
    if (accessToken !== undefined) {
      if (typeof accessToken !== 'string' || accessToken.length === 0) {
        throw invalidType('init.accessToken', 'a non-empty string');
      }
      headers.set('authorization', `DPoP ${accessToken}`);
    } else {
      const match = AUTH_DPOP.exec(headers.get('authorization') ?? '');
      if (match) accessToken = match[1];
    }
    const replayable = !isOneShot(body);
    const mode = rest.redirect ?? base?.redirect ?? 'follow';
    // Outside browsers `redirect: 'manual'` returns the real 3xx: follow it here, one proof per hop.
    const follow = mode === 'follow' && !browserFollows();
    const signal = rest.signal ?? base?.signal;
    let signed = true; // false once the chain has left the origin
    let retried = false;
    let refreshed = false;
    let hops = 0;

    for (;;) {
      const attempt = signed ? await session.attempt(method, url, origin, accessToken) : undefined;
      if (attempt) headers.set('dpop', attempt.proof);
      const next: RequestInit = {
        ...rest,
        method,
        headers,
        body,
        redirect: follow ? 'manual' : mode,
      };
      if (signal) next.signal = signal;
      if (body != null && !replayable) (next as { duplex?: string }).duplex = 'half';
      const response =
        base && hops === 0 ? await fetchImpl(new Request(base, next)) : await fetchImpl(url, next);

      // Learn only from the origin the proof was for: a runtime that follows redirects itself
      // (a browser) may hand back another origin's response. (Not `response.url` alone: a
      // custom fetch may send the request elsewhere, e.g. through a gateway.)
      const own =
        attempt !== undefined && (!response.redirected || response.url.startsWith(`${origin}/`));
      const reason =
        attempt && own
          ? await session.inspect(
              origin,
              {
                status: retried ? 0 : response.status,
                header: (name) => response.headers.get(name),
                jsonError: () => {
                  const copy = response.clone();
                  // React Native's fetch (whatwg-fetch) has no body stream, only text().
                  return copy.body === undefined
                    ? boundedJsonError(null, () => copy.text())
                    : boundedJsonError(copy.body);
                },
              },
              attempt,
            )
          : undefined;
      if (reason !== undefined) {
        if (!replayable) {
          session.emit({ type: 'not-retried', origin, reason: 'body_not_replayable' });
          throw notReplayable('a nonce challenge (the nonce is stored)', { response });
        }
        signal?.throwIfAborted();
        session.emit({ type: 'retry', origin, reason });
        retried = true;
        await response.body?.cancel().catch(() => {});
        continue;
      }

      // 401 invalid_token to a request with an access token (RFC 6750 §3.1): expired?
      const refusal =
        own && accessToken !== undefined && response.status === 401
          ? invalidTokenChallenge(response.headers.get('www-authenticate'))
          : undefined;
      if (refusal !== undefined && accessToken !== undefined) {
        const exp = jwtExp(accessToken);
        const serverNow =
          parseHttpDate(response.headers.get('date')) ?? Date.now() + session.offset(origin) * 1000;
        const expired =
          saysExpired(refusal.description) || (exp !== undefined && exp * 1000 <= serverNow);
        if (refresher && !refreshed && replayable) {
          refreshed = true;
          const next = await refresher.refresh({
            origin,
            url,
            accessToken,
            expired,
            ...refusal,
          });
          if (next !== undefined) {
            signal?.throwIfAborted();
            accessToken = next;
            headers.set('authorization', `DPoP ${next}`);
            retried = false; // a new request: its own nonce retry
            session.emit({ type: 'retry', origin, reason: 'token_refreshed' });
            await response.body?.cancel().catch(() => {});
            continue;
          }
        }
        if (expired) throw tokenExpired(response);
      }

      if (!follow) return response;
      if (response.type === 'opaqueredirect') {
        throw redirectError('this fetch hides redirects (opaque redirect)', response);
      }
      const hop = nextHop(
        response.status,
        response.headers.get('location'),
        { url, method, hops, max: MAX_REDIRECTS },
        body != null && !replayable,
        response,
      );
      if (!hop) return response;
      session.emit({ type: 'redirect', origin, to: hop.origin });
      await response.body?.cancel().catch(() => {});
      hops++;
      if (hop.dropBody) {
        body = undefined;
        for (const name of BODY_HEADERS) headers.delete(name);
      }
      if (hop.origin !== origin) {
        signed = false;
        for (const name of CROSS_ORIGIN_DROPPED) headers.delete(name);
      }
      url = hop.url;
      method = hop.method;
    }
  };
}
