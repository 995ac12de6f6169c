/**
 * CORS for browser clients of DPoP APIs (RFC 9449 §7.1, §8; Fetch standard CORS protocol).
 *
 * A browser lets JavaScript read a cross-origin response header only when the response lists it
 * in `Access-Control-Expose-Headers`: without `DPoP-Nonce` and `WWW-Authenticate` there, an SPA
 * cannot see the server's nonce or the error, and fails at its first `use_dpop_nonce`; without
 * `Date` it cannot learn the server's clock, and a browser whose clock is minutes off has every
 * proof refused (`iat` too old or in the future) with no way to correct it. (`Date` is not a
 * CORS-safelisted response header.) And a preflight must allow the `Authorization` and `DPoP`
 * request headers.
 *
 * popkit's adapters add the expose list to every response to a CORS request (one that carries
 * `Origin`: the Fetch standard's definition, and what every cross-origin `fetch` sends). A real
 * preflight ({@link isCorsPreflight}) carries no credentials and is not authenticated, but it
 * never reaches the application: the CORS middleware in front answers it, or popkit answers 204
 * itself, with only the grants that middleware set (none without one: the browser fails closed).
 * Any other request, `OPTIONS` included, is authenticated.
 * Your CORS middleware (`cors`, `@fastify/cors`, `hono/cors`) decides which origins may call, and
 * needs these two lists:
 *
 * @example
 * ```ts
 * import cors from 'cors';
 * app.use(cors({ origin: 'https://app.example.com', allowedHeaders: [...DPOP_CORS_ALLOW_HEADERS], exposedHeaders: [...DPOP_CORS_EXPOSE_HEADERS] }));
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-8
 */
export const DPOP_CORS_EXPOSE_HEADERS: readonly string[] = Object.freeze([
  'DPoP-Nonce',
  'WWW-Authenticate',
  'Date',
]);

/** Request headers a DPoP client sends, to allow in CORS preflights. */
export const DPOP_CORS_ALLOW_HEADERS: readonly string[] = Object.freeze([
  'Authorization',
  'DPoP',
  'Content-Type',
]);

/** `DPOP_CORS_EXPOSE_HEADERS` as one header value. @internal */
export const DPOP_CORS_EXPOSE_VALUE = DPOP_CORS_EXPOSE_HEADERS.join(', ');

function listOf(value: unknown): string {
  return Array.isArray(value)
    ? value.join(', ')
    : typeof value === 'string' || typeof value === 'number'
      ? String(value)
      : '';
}

/**
 * Merges header names into an existing `Access-Control-Expose-Headers` value, never dropping
 * one: what your CORS middleware (or your own code) already exposes stays, the names it lacks
 * are appended once (compared case-insensitively), and `*` stays `*`. `existing` is a string, or
 * whatever a framework's `getHeader` returns (Node and Fastify keep a list set as an array, and
 * numbers, as given); anything else counts as absent. `added` defaults to
 * {@link DPOP_CORS_EXPOSE_HEADERS}; a string is read as a comma-separated list.
 *
 * Use it where you apply popkit's token-endpoint headers (`TokenRequestResult.headers`,
 * `DPoPError.headers`) yourself: setting them as they are would replace the expose list.
 *
 * @example
 * ```ts
 * const { 'Access-Control-Expose-Headers': expose, ...rest } = dpop.headers;
 * res.set(rest);
 * res.set('Access-Control-Expose-Headers', mergeExposeHeaders(res.get('Access-Control-Expose-Headers'), expose));
 * ```
 */
export function mergeExposeHeaders(
  existing: unknown,
  added: string | readonly string[] = DPOP_CORS_EXPOSE_HEADERS,
): string {
  let current = listOf(existing);
  const wanted = (typeof added === 'string' ? added.split(',') : [...added])
    .map((h) => h.trim())
    .filter((h) => h !== '');
  const names = current
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  if (names.length === 0) current = '';
  if (names.length === 1 && names[0] === '*') return current; // exposes everything (no credentials)
  const have = new Set(names.map((h) => h.toLowerCase()));
  const missing: string[] = [];
  for (const h of wanted) {
    if (have.has(h.toLowerCase())) continue;
    have.add(h.toLowerCase());
    missing.push(h);
  }
  if (missing.length === 0) return current;
  return current === '' ? missing.join(', ') : `${current}, ${missing.join(', ')}`;
}

/**
 * Merges the DPoP expose list into an existing `Access-Control-Expose-Headers` value (see
 * {@link mergeExposeHeaders}). @internal
 */
export function exposeHeaders(value: unknown): string {
  return mergeExposeHeaders(value, DPOP_CORS_EXPOSE_HEADERS);
}

/**
 * A CORS request: one with an `Origin` header (Fetch standard, "CORS protocol"). Only its
 * response needs CORS response headers; other clients never read them. @internal
 */
export function isCorsRequest(originHeader: unknown): boolean {
  return originHeader !== undefined && originHeader !== null;
}

/**
 * A real CORS preflight (Fetch standard, "CORS-preflight request"): `OPTIONS` with a non-empty
 * `Origin` and `Access-Control-Request-Method`, and no credentials (a browser never sends
 * `Authorization` or `DPoP` on a preflight). Only such a request skips authentication; one that
 * lacks `Origin` or carries either credential header is an ordinary request and is
 * authenticated. Header values are as the framework reports them (absent: `undefined` or
 * `null`). @internal
 */
export function isCorsPreflight(
  method: string,
  origin: unknown,
  requestMethod: unknown,
  authorization: unknown,
  dpop: unknown,
): boolean {
  return (
    method === 'OPTIONS' &&
    typeof origin === 'string' &&
    origin !== '' &&
    typeof requestMethod === 'string' &&
    requestMethod !== '' &&
    (authorization === undefined || authorization === null) &&
    (dpop === undefined || dpop === null)
  );
}
