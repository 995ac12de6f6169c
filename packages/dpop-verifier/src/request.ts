import { DPoPConfigError, DPoPError } from './errors.ts';

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
}

/**
 * Every value of a header. With `rawHeaders` each occurrence counts; with `Headers` or a record,
 * duplicates arrive joined with ", " and are caught by the callers' comma checks. @internal
 */
export function headerValues(request: RequestLike, name: string): string[] {
  const raw = request.rawHeaders;
  if (raw !== undefined) {
    const out: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2)
      if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
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

/** How the verifier learns the URL clients addressed, for `htu` (RFC 9449 §4.3 step 9). */
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
}

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** @internal */
export type UrlResolver = (request: RequestLike) => string;

function invalidHost(): DPoPError {
  return new DPoPError('invalid_request', 'invalid_host', 'The request host is not allowed');
}

/**
 * Builds, once, the function that turns a request into the URL the client addressed. Validates
 * the options here; per request it only reads headers. @internal
 */
export function createUrlResolver(options: PublicUrlOptions): UrlResolver {
  const { publicUrl, allowedHosts, trustProxy = false } = options;
  if (typeof publicUrl === 'function') {
    return (request) => {
      const url = publicUrl(request);
      if (typeof url !== 'string')
        throw new DPoPError(
          'invalid_request',
          'invalid_url',
          'The request URL cannot be used for DPoP',
        );
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
    if (url.startsWith('/') && !url.startsWith('//')) return url;
    try {
      const parsed = new URL(url);
      return parsed.pathname + parsed.search;
    } catch {
      throw new DPoPError(
        'invalid_request',
        'invalid_url',
        'The request URL cannot be used for DPoP',
      );
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
    if (typeof url !== 'string')
      throw new DPoPError(
        'invalid_request',
        'invalid_url',
        'The request URL cannot be used for DPoP',
      );
    if (/^https?:\/\//i.test(url)) {
      if (allowed !== undefined) {
        let host: string;
        try {
          host = new URL(url).host;
        } catch {
          throw new DPoPError(
            'invalid_request',
            'invalid_url',
            'The request URL cannot be used for DPoP',
          );
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
