/**
 * `@popkit/dpop-client/mcp`: DPoP for Model Context Protocol clients built with the official
 * TypeScript SDK (`@modelcontextprotocol/sdk`). Browser-safe, no dependency: the types below
 * are structurally the SDK's (`FetchLike`, `Middleware`), so this module does not import it.
 *
 * - {@link withDPoP}: an SDK client `Middleware` for `StreamableHTTPClientTransport({ fetch })`
 *   or `applyMiddlewares(withOAuth(…), withDPoP(key))`.
 * - {@link withDpopJkt}, {@link dpopClientMetadata}, {@link chooseAlgorithm}: the authorization
 *   request, dynamic registration and key algorithm pieces.
 *
 * For a key that survives restarts on Node, see `@popkit/dpop-client/mcp/node`.
 * @packageDocumentation
 */
import type { DPoPAlgorithm } from '../algorithms.ts';
import { SUPPORTED_ALGORITHMS } from '../algorithms.ts';
import { parseWWWAuthenticate } from '../challenge.ts';
import { invalidType, invalidValue } from '../errors.ts';
import type { FetchLike as CoreFetchLike } from '../fetch.ts';
import { createDPoPFetch } from '../fetch.ts';
import { thumbprint } from '../keys.ts';
import { LruMap } from '../nonce-store.ts';
import type { DPoPSessionOptions } from '../session.ts';
import type { DPoPKey } from '../signer.ts';

/** The SDK's `FetchLike` (`@modelcontextprotocol/sdk/shared/transport.js`). */
export type McpFetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** The SDK's client `Middleware` (`@modelcontextprotocol/sdk/client/middleware.js`). */
export type McpMiddleware = (next: McpFetchLike) => McpFetchLike;

/** The part of the SDK's `OAuthClientProvider` that {@link withDPoP} may read. */
export interface McpTokenSource {
  tokens():
    | { access_token: string; token_type?: string }
    | undefined
    | Promise<{ access_token: string; token_type?: string } | undefined>;
}

/** Options of {@link withDPoP}. */
export interface WithDPoPOptions extends DPoPSessionOptions {
  /**
   * Where the tokens are kept (the SDK `OAuthClientProvider` given to the transport). An access
   * token it holds with `token_type: "DPoP"` is sent on the `DPoP` scheme even when this
   * middleware did not see it issued: a client restarted with stored tokens (and the same key,
   * see `@popkit/dpop-client/mcp/node`).
   */
  provider?: McpTokenSource;
  /**
   * Add a `Bearer` challenge with the DPoP challenge's `error`, `scope` and `resource_metadata`
   * in front of a 401 or 403 that has only a DPoP challenge, so that the SDK (which reads only
   * `Bearer` challenges) finds the resource metadata and can step up its scope. Default true.
   */
  sdkChallenge?: boolean;
}

/** Access tokens the middleware saw issued with `token_type: DPoP`, kept at most this many. */
const MAX_TOKENS = 64;
const AUTH_BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;
const WELL_KNOWN = /\/\.well-known\//;

/**
 * An SDK client `Middleware` that sends DPoP (RFC 9449) for an MCP client:
 *
 * - the token request (a form `POST` with `grant_type`, or to the `token_endpoint` of
 *   authorization-server metadata that passed through) carries a DPoP proof, so the tokens are
 *   bound to `key` (refresh tokens too, for public clients);
 * - token responses passing through are read: an access token issued with
 *   `token_type: "DPoP"` is remembered (in memory) and the SDK's `Authorization: Bearer <it>`
 *   is rewritten to `Authorization: DPoP <it>` with a proof carrying `ath`; a token issued as
 *   `Bearer` (or not seen, unless `provider` says it is DPoP) is sent as it is;
 * - `DPoP-Nonce` challenges (401 `use_dpop_nonce` from the MCP server, 400 from the token
 *   endpoint) are answered with the one retry, and the server's clock offset is learned, by
 *   `createDPoPFetch`;
 * - discovery (`/.well-known/…`) and dynamic registration requests are sent untouched;
 * - a DPoP-only 401/403 challenge is also shown to the SDK as `Bearer` (see `sdkChallenge`).
 *
 * Alone as the transport's `fetch`, or innermost (nearest the network, so it sees the
 * `Authorization` header the others set): with `applyMiddlewares`, whose first middleware is the
 * innermost, `applyMiddlewares(withDPoP(key), withOAuth(provider, url))`.
 *
 * @example
 * ```ts
 * const keyPair = await generateKeyPair();
 * const transport = new StreamableHTTPClientTransport(new URL('https://mcp.example.com/mcp'), {
 *   authProvider, fetch: withDPoP(keyPair, { provider: authProvider })(fetch),
 * });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export function withDPoP(key: DPoPKey, options: WithDPoPOptions = {}): McpMiddleware {
  if (key === null || typeof key !== 'object')
    throw invalidType('key', 'a CryptoKeyPair or a DPoPSigner');
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object');
  const { provider, sdkChallenge = true, ...session } = options;
  if (provider !== undefined && typeof provider?.tokens !== 'function')
    throw invalidType('options.provider', 'an object with a tokens() method');
  // One record per middleware, shared by every fetch it wraps.
  const issued = new LruMap<true>(MAX_TOKENS);
  const endpoints = { token: new Set<string>(), registration: new Set<string>() };

  return (next) => {
    const dpopFetch = createDPoPFetch(key, { ...session, fetch: next as CoreFetchLike });
    const isDPoPToken = async (token: string): Promise<boolean> => {
      if (issued.get(token) === true) return true;
      if (provider === undefined) return false;
      const held = await provider.tokens();
      return held?.access_token === token && /^dpop$/i.test(held.token_type ?? '');
    };

    return async (input, init) => {
      const url = new URL(String(input));
      const target = `${url.origin}${url.pathname}`;
      const method = (init?.method ?? 'GET').toUpperCase();
      if (WELL_KNOWN.test(url.pathname) || endpoints.registration.has(target)) {
        const response = await next(input, init);
        if (response.ok && WELL_KNOWN.test(url.pathname)) await learnEndpoints(response, endpoints);
        return response;
      }
      const headers = new Headers(init?.headers);
      const bearer = AUTH_BEARER.exec(headers.get('authorization') ?? '')?.[1];
      if (method === 'POST' && (endpoints.token.has(target) || isTokenRequest(init?.body))) {
        const response = await dpopFetch(url.href, { ...init, headers });
        return learnToken(response, issued);
      }
      if (bearer !== undefined && (await isDPoPToken(bearer))) {
        headers.set('authorization', `DPoP ${bearer}`);
        return forSdk(await dpopFetch(url.href, { ...init, headers }), sdkChallenge);
      }
      if (/^dpop[ \t]/i.test(headers.get('authorization') ?? ''))
        return forSdk(await dpopFetch(url.href, { ...init, headers }), sdkChallenge);
      return forSdk(await next(input, init), sdkChallenge);
    };
  };
}

/** A token request body: form-encoded with `grant_type` (as the SDK sends it). */
function isTokenRequest(body: unknown): boolean {
  if (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams)
    return body.has('grant_type');
  return typeof body === 'string' && /(?:^|&)grant_type=/.test(body);
}

/** Reads `token_endpoint` and `registration_endpoint` from authorization-server metadata. */
async function learnEndpoints(
  response: Response,
  endpoints: { token: Set<string>; registration: Set<string> },
): Promise<void> {
  const metadata = await jsonOf(response);
  for (const [name, set] of [
    ['token_endpoint', endpoints.token],
    ['registration_endpoint', endpoints.registration],
  ] as const) {
    const value = metadata?.[name];
    if (typeof value !== 'string') continue;
    try {
      const u = new URL(value);
      if (set.size < 16) set.add(`${u.origin}${u.pathname}`);
    } catch {
      // not a URL: the SDK will fail on it too
    }
  }
}

/** Remembers an access token issued with `token_type: DPoP`; the response is returned as is. */
async function learnToken(response: Response, issued: LruMap<true>): Promise<Response> {
  if (!response.ok) return response;
  const body = await jsonOf(response);
  const token = body?.access_token;
  if (typeof token === 'string' && /^dpop$/i.test(String(body?.token_type ?? '')))
    issued.set(token, true);
  return response;
}

/** The JSON object of a response (read from a clone, at most 64 KiB), or `undefined`. */
async function jsonOf(response: Response): Promise<Record<string, unknown> | undefined> {
  if (!/\bjson\b/i.test(response.headers.get('content-type') ?? '')) return undefined;
  try {
    const text = await response.clone().text();
    if (text.length > 65536) return undefined;
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&').replace(/[\x00-\x1f\x7f]/g, '')}"`;
}

/**
 * The SDK reads `resource_metadata`, `scope` and `error` only from a header whose first
 * challenge is `Bearer`: a DPoP-only challenge is shown with a `Bearer` copy of those
 * parameters in front, so discovery and step-up work.
 */
function forSdk(response: Response, enabled: boolean): Response {
  if (!enabled || (response.status !== 401 && response.status !== 403)) return response;
  const header = response.headers.get('www-authenticate');
  const challenges = parseWWWAuthenticate(header);
  if (challenges.some((c) => c.scheme === 'bearer')) return response;
  const dpop = challenges.find((c) => c.scheme === 'dpop');
  if (dpop === undefined) return response;
  const params = ['error', 'scope', 'resource_metadata']
    .filter((name) => dpop.params[name] !== undefined)
    .map((name) => `${name}=${quote(dpop.params[name]!)}`);
  if (params.length === 0) return response;
  const headers = new Headers(response.headers);
  headers.set('www-authenticate', `Bearer ${params.join(', ')}, ${header}`);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

/**
 * Adds `dpop_jkt` (RFC 9449 §10), the thumbprint of `key`, to an authorization URL, binding
 * the authorization code to the key that will redeem it. Use it in the SDK provider's
 * `redirectToAuthorization(url)`.
 *
 * @example
 * ```ts
 * redirectToAuthorization: async (url) => openBrowser(await withDpopJkt(url, keyPair)),
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-10
 */
export async function withDpopJkt(authorizationUrl: URL | string, key: DPoPKey): Promise<URL> {
  const url = new URL(String(authorizationUrl));
  url.searchParams.set('dpop_jkt', await thumbprint(key));
  return url;
}

/** RFC 9449 §5.2's client metadata member, for dynamic client registration (RFC 7591). */
export interface DPoPClientMetadata {
  dpop_bound_access_tokens: true;
}

/**
 * The client metadata fragment asking for DPoP-bound access tokens only (RFC 9449 §5.2):
 * spread it into the SDK provider's `clientMetadata`.
 *
 * @example
 * ```ts
 * clientMetadata: { client_name: 'my-cli', redirect_uris: [redirect], ...dpopClientMetadata() },
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5.2
 */
export function dpopClientMetadata(): DPoPClientMetadata {
  return { dpop_bound_access_tokens: true };
}

/** Metadata naming the proof algorithms a server accepts (RFC 9449 §5.1, §5.2). */
export interface DPoPAlgorithmsMetadata {
  dpop_signing_alg_values_supported?: readonly string[] | undefined;
}

/**
 * The algorithm to generate a DPoP key with: the first of `preference` (default popkit's:
 * `ES256`, `EdDSA`, …) that every given metadata document lists in
 * `dpop_signing_alg_values_supported` (authorization-server and protected-resource metadata,
 * RFC 9449 §5.1 and §5.2). A document without the member accepts any; with none, the first
 * preference. Throws when no algorithm suits them all.
 *
 * @example
 * ```ts
 * const alg = chooseAlgorithm(authorizationServerMetadata, resourceMetadata);
 * const keyPair = await generateKeyPair(alg);
 * ```
 */
export function chooseAlgorithm(
  ...metadata: Array<DPoPAlgorithmsMetadata | undefined>
): DPoPAlgorithm {
  return chooseAlgorithmFrom(metadata, SUPPORTED_ALGORITHMS);
}

/** {@link chooseAlgorithm} with your own order of preference. */
export function chooseAlgorithmFrom(
  metadata: ReadonlyArray<DPoPAlgorithmsMetadata | undefined>,
  preference: readonly DPoPAlgorithm[],
): DPoPAlgorithm {
  if (!Array.isArray(preference) || preference.length === 0)
    throw invalidType('preference', 'a non-empty array of algorithms');
  for (const alg of preference) {
    if (!SUPPORTED_ALGORITHMS.includes(alg))
      throw invalidValue('preference', `names an unsupported algorithm`);
  }
  const lists = metadata
    .map((m) => m?.dpop_signing_alg_values_supported)
    .filter((l): l is readonly string[] => Array.isArray(l));
  // (`EdDSA` and `Ed25519` are matched as written: for `Ed25519`, sign with
  // `ed25519Alg: 'Ed25519'`.)
  const ok = (alg: DPoPAlgorithm) => lists.every((list) => list.includes(alg));
  const found = preference.find(ok);
  if (found === undefined)
    throw invalidValue('metadata', 'lists no DPoP algorithm this client supports');
  return found;
}
