import type { DPoPError } from './errors.ts';
import { DPoPConfigError, refuse } from './errors.ts';
import type { OptionNames } from './options.ts';

/** Request headers: a Web `Headers` object or Node's `IncomingHttpHeaders`-style record. */
export type HeadersLike =
  Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The Fetch-shaped request the core verifies. Adapters map their framework onto it; a Web
 * `Request` already is one.
 */
export interface RequestLike {
  method: string;
  /** Absolute URL, or origin-form path (`/a/b?c`) when the adapter only knows the path. */
  url: string;
  headers: HeadersLike;
  /** Node's `rawHeaders`, which keep duplicates Node would otherwise merge or drop. */
  rawHeaders?: readonly string[];
  /** Scheme of the connection (for origin-form URLs): `https` when TLS terminated here. */
  protocol?: 'http' | 'https';
  /** The connection's socket (Node adapters), for client certificates (RFC 8705). */
  socket?: unknown;
  /**
   * The parsed form body, when the framework parsed one (Express, Fastify, Hono adapters): an
   * `access_token` in it is refused (RFC 6750 §2, RFC 9449 §7). A stream is never read.
   */
  body?: unknown;
}

/**
 * Every value of a header. With `rawHeaders` each occurrence counts; with `Headers` or a record,
 * duplicates arrive joined with ", " and are caught by the callers' comma checks. @internal
 */
export function headerValues(request: RequestLike, name: string): string[] {
  const raw = request.rawHeaders;
  if (raw !== undefined) {
    const out: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      // (`name` is lower case; only a name of its length can match, so only those are lowered)
      const n = raw[i]!;
      if (n.length === name.length && (n === name || n.toLowerCase() === name))
        out.push(raw[i + 1]!);
    }
    return out;
  }
  const headers = request.headers;
  if (typeof (headers as Headers).get === 'function') {
    const value = (headers as Headers).get(name);
    return value === null ? [] : [value];
  }
  const value = (headers as Record<string, string | readonly string[] | undefined>)[name];
  if (value === undefined) return [];
  return typeof value === 'string' ? [value] : [...value];
}

/** How the verifier learns the URL clients addressed, for `htu` (RFC 9449 §4.3 check 9). */
export interface PublicUrlOptions {
  /**
   * The server's public base URL (scheme, host, optional path prefix), e.g.
   * `https://api.example.com/orders-service`. The request path is appended to it; the `Host`
   * and `X-Forwarded-*` headers are then ignored. Or a function returning the full URL.
   * Recommended behind any proxy or path-rewriting gateway.
   */
  publicUrl?: string | ((request: RequestLike) => string);
  /** Hosts (with port when not default) a request-derived URL may name. */
  allowedHosts?: readonly string[];
  /** Trust `X-Forwarded-Host` and `X-Forwarded-Proto` (only behind a proxy that sets them). */
  trustProxy?: boolean;
  /**
   * **Development only.** Without `publicUrl` or `allowedHosts` the verifier refuses to be
   * built, because the expected `htu` would come from the request itself (its `Host` header or
   * absolute URL), so a proof captured for one service would be accepted by any other that
   * shares the token audience. Setting this to `true` accepts that, knowingly.
   */
  dangerouslyTrustRequestUrl?: boolean;
}

/** The names of {@link PublicUrlOptions}, for the unknown-option check. @internal */
export const PUBLIC_URL_OPTION_NAMES = {
  publicUrl: true,
  allowedHosts: true,
  trustProxy: true,
  dangerouslyTrustRequestUrl: true,
} as const satisfies OptionNames<PublicUrlOptions>;

/**
 * Refuses, when a verifier is built, to derive the expected `htu` from requests without any
 * host validation. @internal
 */
export function requireUrlTrust(options: PublicUrlOptions, urlOption = 'publicUrl'): void {
  const { dangerouslyTrustRequestUrl } = options;
  if (dangerouslyTrustRequestUrl !== undefined && typeof dangerouslyTrustRequestUrl !== 'boolean')
    throw new DPoPConfigError('dangerouslyTrustRequestUrl', 'must be a boolean');
  if (
    options.publicUrl === undefined &&
    options.allowedHosts === undefined &&
    dangerouslyTrustRequestUrl !== true
  ) {
    throw new DPoPConfigError(
      urlOption,
      `or "allowedHosts" is required: without them the expected htu would come from the request itself (set "dangerouslyTrustRequestUrl: true" only in development)`,
    );
  }
}

/** `.` and `..` segments, raw or percent-encoded, and backslashes, in a request path. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;
const BACKSLASH = /\\|%5c/i;

/**
 * Refuses request paths that a router and the `htu` normaliser could read differently: a proof
 * names `/files/report.txt`; `/files/secret.txt/../report.txt` normalises to it, but a framework
 * may route the raw path. @internal
 */
export function checkPath(path: string): void {
  const end = path.search(/[?#]/);
  const p = end < 0 ? path : path.slice(0, end);
  if (DOT_SEGMENT.test(p) || BACKSLASH.test(p)) {
    throw refuse('invalid_path');
  }
}

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** @internal */
export type UrlResolver = (request: RequestLike) => string;

/** The path of an absolute URL as written (before any parser removes dot segments). */
function rawPath(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  return start < 0 ? '/' : url.slice(start);
}

function invalidHost(): DPoPError {
  return refuse('invalid_host');
}

/**
 * Builds, once, the function that turns a request into the URL the client addressed. Validates
 * the options here; per request it only reads headers. @internal
 */
export function createUrlResolver(options: PublicUrlOptions): UrlResolver {
  const { publicUrl, allowedHosts, trustProxy = false } = options;
  if (typeof publicUrl === 'function') {
    return (request) => {
      if (typeof request.url === 'string')
        checkPath(/^https?:\/\//i.test(request.url) ? rawPath(request.url) : request.url);
      const url = publicUrl(request);
      if (typeof url !== 'string') throw refuse('invalid_url');
      return url;
    };
  }
  const allowed =
    allowedHosts === undefined ? undefined : new Set(allowedHosts.map((h) => h.toLowerCase()));
  if (
    allowedHosts !== undefined &&
    (!Array.isArray(allowedHosts) ||
      !allowedHosts.every((h) => typeof h === 'string' && HOST.test(h)))
  ) {
    throw new DPoPConfigError('allowedHosts', 'must be a list of host[:port] names');
  }
  const pathOf = (url: string): string => {
    if (url.startsWith('/') && !url.startsWith('//')) {
      checkPath(url);
      return url;
    }
    try {
      const parsed = new URL(url);
      checkPath(rawPath(url));
      return parsed.pathname + parsed.search;
    } catch {
      throw refuse('invalid_url');
    }
  };
  if (typeof publicUrl === 'string') {
    let base: URL;
    try {
      base = new URL(publicUrl);
    } catch {
      throw new DPoPConfigError('publicUrl', 'must be an absolute http(s) URL');
    }
    if (
      (base.protocol !== 'https:' && base.protocol !== 'http:') ||
      base.search ||
      base.hash ||
      base.username
    ) {
      throw new DPoPConfigError(
        'publicUrl',
        'must be an http(s) URL without query, fragment or userinfo',
      );
    }
    const prefix = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
    return (request) => prefix + pathOf(request.url);
  }
  return (request) => {
    const url = request.url;
    if (typeof url !== 'string') throw refuse('invalid_url');
    if (/^https?:\/\//i.test(url)) {
      checkPath(rawPath(url));
      if (allowed !== undefined) {
        let host: string;
        try {
          host = new URL(url).host;
        } catch {
          throw refuse('invalid_url');
        }
        if (!allowed.has(host.toLowerCase())) throw invalidHost();
      }
      return url;
    }
    const forwardedHost = trustProxy ? headerValues(request, 'x-forwarded-host') : [];
    const hosts = forwardedHost.length > 0 ? forwardedHost : headerValues(request, 'host');
    if (hosts.length !== 1) throw invalidHost();
    const host = hosts[0]!.trim();
    if (!HOST.test(host)) throw invalidHost();
    if (allowed !== undefined && !allowed.has(host.toLowerCase())) throw invalidHost();
    let protocol: string = request.protocol ?? 'http';
    if (trustProxy) {
      const proto = headerValues(request, 'x-forwarded-proto');
      if (proto.length > 1) throw invalidHost();
      if (proto.length === 1) {
        const p = proto[0]!.trim().toLowerCase();
        if (p !== 'http' && p !== 'https') throw invalidHost();
        protocol = p;
      }
    }
    return `${protocol}://${host}${pathOf(url)}`;
  };
}
