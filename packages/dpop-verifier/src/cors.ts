/**
 * CORS for browser clients of DPoP APIs (RFC 9449 §7.1, §8; Fetch standard CORS protocol).
 *
 * A browser lets JavaScript read a cross-origin response header only when the response lists it
 * in `Access-Control-Expose-Headers`: without `DPoP-Nonce` and `WWW-Authenticate` there, an SPA
 * cannot see the server's nonce or the error, and fails at its first `use_dpop_nonce`. And a
 * preflight must allow the `Authorization` and `DPoP` request headers.
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
]);

/** Request headers a DPoP client sends, to allow in CORS preflights. */
export const DPOP_CORS_ALLOW_HEADERS: readonly string[] = Object.freeze([
  'Authorization',
  'DPoP',
  'Content-Type',
]);

const EXPOSE = DPOP_CORS_EXPOSE_HEADERS.join(', ');

/**
 * Merges the DPoP expose list into an existing `Access-Control-Expose-Headers` value: a string,
 * or whatever else a framework's `getHeader` returns (Node and Fastify keep a list set as an
 * array, and numbers, as they were given). @internal
 */
export function exposeHeaders(value: unknown): string {
  const existing = Array.isArray(value)
    ? value.join(', ')
    : typeof value === 'string' || typeof value === 'number'
      ? String(value)
      : '';
  if (existing.trim() === '') return EXPOSE;
  if (existing.trim() === '*') return existing; // already exposes everything (no credentials)
  const have = new Set(existing.split(',').map((h) => h.trim().toLowerCase()));
  const missing = DPOP_CORS_EXPOSE_HEADERS.filter((h) => !have.has(h.toLowerCase()));
  return missing.length === 0 ? existing : `${existing}, ${missing.join(', ')}`;
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
