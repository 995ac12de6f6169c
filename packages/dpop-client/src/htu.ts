import type { WireUrl } from './wire-url.ts';
import { parseWireUrl } from '#wire-url';
import { invalidType, invalidValue } from './errors.ts';

/** Longest URL `normalizeHtu` accepts (characters). */
export const MAX_HTU_LENGTH = 8192;

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const PCT = /%([0-9A-Fa-f]{2})/g;

function normalizePercent(_match: string, hex: string): string {
  const char = String.fromCharCode(parseInt(hex, 16));
  return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
}

/**
 * Normalises an HTTP(S) URL for the DPoP `htu` claim (RFC 9449 §4.2-4.3) with the RFC 3986
 * §6.2.2 syntax-based and §6.2.3 scheme-based rules, so that client and server compare equal
 * spellings equal:
 *
 * - scheme and host lower-cased (IDNs to punycode, IPv6 canonical), default port removed;
 * - percent-encoding hex upper-cased and unreserved characters decoded; dot segments removed;
 * - an empty path becomes `/`;
 * - query and fragment dropped (RFC 9449 §4.2 "without query and fragment parts").
 *
 * Throws a `TypeError` (code `ERR_INVALID_ARG_VALUE`) for a relative URL, a scheme other than
 * `http`/`https`, userinfo (`user:pass@`), or a URL over {@link MAX_HTU_LENGTH} characters.
 * The verifier applies the same function to both sides.
 *
 * @example
 * ```ts
 * normalizeHtu('HTTPS://API.Example.COM:443/a/./b/../%7euser?q=1#f'); // 'https://api.example.com/a/~user'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2
 */
export function normalizeHtu(url: string | URL, name = 'url'): string {
  const parsed = parseHttpUrl(url, name);
  let path = parsed.pathname;
  if (path.includes('%')) path = path.replace(PCT, normalizePercent);
  return `${parsed.protocol}//${parsed.host}${path}`;
}

/**
 * The `htu` a client signs (RFC 9449 §4.2): the URL exactly as `fetch` puts it on the wire, the
 * WHATWG URL serialisation of its origin and path, with query and fragment dropped. The WHATWG
 * parser already lower-cases the scheme and host, drops a default port, converts IDNs to
 * punycode, canonicalises IPv6 and resolves dot segments, as `fetch` does; unlike
 * {@link normalizeHtu} it leaves percent-encoding as written (`/a%7eb` stays `/a%7eb`), because
 * that is what the server receives. Verifiers that compare the URL as received (RFC 9449 only
 * says servers SHOULD normalise) then accept the proof; popkit's verifier normalises both sides
 * and accepts either spelling.
 *
 * Where the platform's `URL` is not WHATWG-conformant (React Native's polyfill serialises the
 * URL as written) or missing, popkit applies the Standard's parser itself (scheme and host
 * lower-cased, default port dropped, IPv4 and IPv6 canonical, dot segments resolved, the path
 * percent-encode set applied, IDNs to Punycode after NFKC and lower-casing where
 * `String.prototype.normalize` exists), so the proof signs what the native HTTP stack sends.
 *
 * Same errors as {@link normalizeHtu}.
 *
 * @example
 * ```ts
 * wireHtu('HTTPS://API.Example.COM:443/a/./b/../%7euser?q=1#f'); // 'https://api.example.com/a/%7euser'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 * @see https://url.spec.whatwg.org/#url-serializing
 */
export function wireHtu(url: string | URL, name = 'url'): string {
  const parsed = parseHttpUrl(url, name);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/** The WHATWG origin (`scheme://host[:port]`) of an http(s) URL, with or without `URL`. @internal */
export function wireOrigin(url: string | URL, name = 'url'): string {
  const parsed = parseHttpUrl(url, name);
  return `${parsed.protocol}//${parsed.host}`;
}

let whatwg: boolean | undefined;

/**
 * Whether the global `URL` serialises as the WHATWG URL Standard says (browsers, Node, Deno,
 * Bun, Workers). React Native's polyfill (`Libraries/Blob/URL.js`) returns the URL as written,
 * and some runtimes have no `URL` at all: then {@link parseWireUrl} does the serialisation.
 */
function hasWhatwgUrl(): boolean {
  if (whatwg === undefined) {
    try {
      const u = new URL('HTTPS://EX.Example:443/a/./b/../%7e c');
      whatwg =
        u.protocol === 'https:' &&
        u.host === 'ex.example' &&
        u.pathname === '/a/%7e%20c' &&
        new URL('https://b\u00fccher.example').host === 'xn--bcher-kva.example';
    } catch {
      whatwg = false;
    }
  }
  return whatwg;
}

function parseHttpUrl(url: string | URL, name: string): WireUrl {
  let text: string | undefined;
  let parsed: WireUrl | undefined;
  if (typeof URL === 'function' && url instanceof URL) {
    if (hasWhatwgUrl())
      parsed = { ...pick(url), userinfo: url.username !== '' || url.password !== '' };
    else text = url.href;
  } else {
    if (typeof url !== 'string') throw invalidType(name, 'a string or URL');
    if (url.length > MAX_HTU_LENGTH) throw invalidValue(name, 'is too long');
    text = url;
  }
  if (text !== undefined) {
    if (hasWhatwgUrl()) {
      let u: URL;
      try {
        u = new URL(text);
      } catch {
        throw invalidValue(name, 'must be an absolute http(s) URL');
      }
      parsed = { ...pick(u), userinfo: u.username !== '' || u.password !== '' };
    } else if (parseWireUrl === undefined) {
      throw invalidValue(
        name,
        'cannot be signed: this runtime has no WHATWG URL (bundle with the "react-native" condition, as Metro does)',
      );
    } else parsed = parseWireUrl(text);
  }
  if (parsed === undefined || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw invalidValue(name, 'must be an absolute http(s) URL');
  }
  if (parsed.userinfo) throw invalidValue(name, 'must not contain userinfo');
  return parsed;
}

function pick(u: URL): Omit<WireUrl, 'userinfo'> {
  return { protocol: u.protocol, host: u.host, pathname: u.pathname };
}

const STANDARD_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Normalises an HTTP method for `htm` (RFC 9449 §4.2): must be an RFC 9110 token; the
 * standard methods are upper-cased (as `fetch` does), others are kept as written.
 * @internal
 */
export function normalizeMethod(method: string, name = 'method'): string {
  if (method === 'GET' || method === 'POST') return method; // the common case, already normal
  if (typeof method !== 'string') throw invalidType(name, 'a string');
  if (method.length === 0 || method.length > 64 || !TOKEN.test(method)) {
    throw invalidValue(name, 'must be an HTTP method token');
  }
  const upper = method.toUpperCase();
  return STANDARD_METHODS.has(upper) ? upper : method;
}
