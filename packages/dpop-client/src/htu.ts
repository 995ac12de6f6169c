import { utf8 } from './base64url.ts';
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

/** The parts of an http(s) URL that `htu` is made of, WHATWG-serialised. @internal */
export interface WireUrl {
  /** `http:` or `https:` (any other scheme, lower-cased, for the caller to refuse). */
  protocol: string;
  /** Host and non-default port, e.g. `api.example.com`, `[::1]:8443`. */
  host: string;
  /** Path with dot segments resolved and the path percent-encode set applied. */
  pathname: string;
  /** Whether the URL carried userinfo. */
  userinfo: boolean;
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

// --- The WHATWG URL parser, for http(s) URLs only, where the platform has none ---------------
// https://url.spec.whatwg.org/#concept-basic-url-parser, for special schemes: what `fetch`
// sends. Differentially tested against Node's URL in test/htu.test.ts.

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };
const FORBIDDEN_DOMAIN = /[\x00-\x20#%/:<>?@[\\\]^|\x7f]/;
// The path percent-encode set: C0 controls, space, " # < > ? ` { } and everything above ~.
const PATH_ENCODE = /[\x00-\x20"#<>?`{}\x7f-\uffff]/;

/**
 * Parses an absolute URL as the WHATWG URL Standard does for `http:` and `https:` and returns
 * its serialised protocol, host and path; `undefined` when the Standard says it is no URL.
 * Other schemes come back with only `protocol` meaningful. @internal
 */
export function parseWireUrl(input: string): WireUrl | undefined {
  const s = input.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '').replace(/[\t\n\r]/g, '');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s);
  if (scheme === null) return undefined;
  const protocol = `${scheme[1]!.toLowerCase()}:`;
  if (DEFAULT_PORT[protocol] === undefined)
    return { protocol, host: '', pathname: '', userinfo: false };
  const rest = s.slice(scheme[0].length).replace(/^[/\\]+/, '');
  let end = rest.search(/[/\\?#]/);
  if (end < 0) end = rest.length;
  const authority = rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  const hostPort = authority.slice(at + 1);
  let hostText = hostPort;
  let port = '';
  const bracket = hostPort.startsWith('[') ? hostPort.indexOf(']:') : 0;
  const colon = bracket < 0 ? -1 : hostPort.indexOf(':', bracket);
  if (colon > 0) {
    hostText = hostPort.slice(0, colon);
    port = hostPort.slice(colon + 1);
    if (!/^[0-9]*$/.test(port)) return undefined;
    if (port !== '') {
      const n = Number(port);
      if (n > 65535) return undefined;
      port = n === Number(DEFAULT_PORT[protocol]) ? '' : String(n);
    }
  } else if (colon === 0) return undefined;
  const host = parseHost(hostText);
  if (host === undefined) return undefined;
  return {
    protocol,
    host: port === '' ? host : `${host}:${port}`,
    pathname: parsePath(rest.slice(end)),
    userinfo: at >= 0,
  };
}

function parseHost(input: string): string | undefined {
  if (input.startsWith('[')) {
    if (!input.endsWith(']')) return undefined;
    const pieces = parseIPv6(input.slice(1, -1));
    return pieces === undefined ? undefined : `[${serializeIPv6(pieces)}]`;
  }
  if (input === '') return undefined;
  let domain: string;
  try {
    domain = input.includes('%') ? decodeURIComponent(input) : input;
  } catch {
    return undefined;
  }
  const ascii = domainToAscii(domain);
  if (ascii === undefined || ascii === '' || FORBIDDEN_DOMAIN.test(ascii)) return undefined;
  const labels = ascii.split('.');
  if (labels[labels.length - 1] === '' && labels.length > 1) labels.pop();
  const last = labels[labels.length - 1]!;
  if (/^[0-9]+$/.test(last) || ipv4Number(last) !== undefined) return parseIPv4(labels);
  return ascii;
}

// UTS 46 ToASCII as far as the platform allows: NFKC and lower case (where `normalize`
// exists), the ideographic full stops as dots, and Punycode (RFC 3492) for non-ASCII labels.
function domainToAscii(domain: string): string | undefined {
  let d = domain.replace(/[\u3002\uff0e\uff61]/g, '.');
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(d)) return d.toLowerCase();
  if (typeof d.normalize === 'function') d = d.normalize('NFKC');
  d = d.toLowerCase();
  return d
    .split('.')
    .map((label) => (/^[\x00-\x7f]*$/.test(label) ? label : `xn--${punycode(label)}`))
    .join('.');
}

function punycode(label: string): string {
  const points: number[] = [];
  for (const ch of label) points.push(ch.codePointAt(0)!);
  let out = '';
  for (const p of points) if (p < 0x80) out += String.fromCharCode(p);
  const basic = out.length;
  let handled = basic;
  if (basic > 0) out += '-';
  let n = 0x80;
  let delta = 0;
  let bias = 72;
  const digit = (d: number) => String.fromCharCode(d < 26 ? 97 + d : 22 + d);
  while (handled < points.length) {
    let m = Infinity;
    for (const p of points) if (p >= n && p < m) m = p;
    delta += (m - n) * (handled + 1);
    n = m;
    for (const p of points) {
      if (p < n) delta++;
      if (p !== n) continue;
      let q = delta;
      for (let k = 36; ; k += 36) {
        const t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
        if (q < t) break;
        out += digit(t + ((q - t) % (36 - t)));
        q = Math.floor((q - t) / (36 - t));
      }
      out += digit(q);
      // RFC 3492 §6.1 bias adaptation
      let dl = handled === basic ? Math.floor(delta / 700) : delta >> 1;
      dl += Math.floor(dl / (handled + 1));
      let k = 0;
      for (; dl > 455; k += 36) dl = Math.floor(dl / 35);
      bias = k + Math.floor((36 * dl) / (dl + 38));
      delta = 0;
      handled++;
    }
    delta++;
    n++;
  }
  return out;
}

function ipv4Number(part: string): number | undefined {
  if (part === '') return undefined;
  let radix = 10;
  let digits = part;
  if (/^0[xX]/.test(part)) {
    radix = 16;
    digits = part.slice(2);
    if (digits === '') return 0;
    if (!/^[0-9A-Fa-f]+$/.test(digits)) return undefined;
  } else if (part.length > 1 && part[0] === '0') {
    radix = 8;
    digits = part.slice(1);
    if (!/^[0-7]+$/.test(digits)) return undefined;
  } else if (!/^[0-9]+$/.test(digits)) return undefined;
  return parseInt(digits, radix);
}

function parseIPv4(labels: string[]): string | undefined {
  if (labels.length > 4) return undefined;
  const numbers: number[] = [];
  for (const label of labels) {
    const n = ipv4Number(label);
    if (n === undefined) return undefined;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return undefined;
  let value = last;
  numbers.forEach((n, i) => (value += n * 256 ** (3 - i)));
  const out: number[] = [];
  for (let i = 0; i < 4; i++) {
    out.unshift(value % 256);
    value = Math.floor(value / 256);
  }
  return out.join('.');
}

function parseIPv6(input: string): number[] | undefined {
  const a = [0, 0, 0, 0, 0, 0, 0, 0];
  let piece = 0;
  let compress = -1;
  let i = 0;
  const hex = /[0-9A-Fa-f]/;
  const dec = /[0-9]/;
  if (input[0] === ':') {
    if (input[1] !== ':') return undefined;
    i = 2;
    compress = piece = 1;
  }
  while (i < input.length) {
    if (piece === 8) return undefined;
    if (input[i] === ':') {
      if (compress !== -1) return undefined;
      i++;
      compress = ++piece;
      continue;
    }
    let value = 0;
    let length = 0;
    while (length < 4 && i < input.length && hex.test(input[i]!)) {
      value = value * 16 + parseInt(input[i]!, 16);
      i++;
      length++;
    }
    if (input[i] === '.') {
      if (length === 0 || piece > 6) return undefined;
      i -= length;
      let seen = 0;
      while (i < input.length) {
        let v4 = -1;
        if (seen > 0) {
          if (input[i] === '.' && seen < 4) i++;
          else return undefined;
        }
        if (!dec.test(input[i] ?? '')) return undefined;
        while (dec.test(input[i] ?? '')) {
          const d = Number(input[i]);
          if (v4 === 0) return undefined;
          v4 = v4 < 0 ? d : v4 * 10 + d;
          if (v4 > 255) return undefined;
          i++;
        }
        a[piece] = a[piece]! * 256 + v4;
        seen++;
        if (seen === 2 || seen === 4) piece++;
      }
      if (seen !== 4) return undefined;
      break;
    } else if (input[i] === ':') {
      i++;
      if (i >= input.length) return undefined;
    } else if (i < input.length) return undefined;
    a[piece++] = value;
  }
  if (compress !== -1) {
    let swaps = piece - compress;
    piece = 7;
    while (piece !== 0 && swaps > 0) {
      const t = a[piece]!;
      a[piece] = a[compress + swaps - 1]!;
      a[compress + swaps - 1] = t;
      piece--;
      swaps--;
    }
  } else if (piece !== 8) return undefined;
  return a;
}

function serializeIPv6(a: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (a[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && a[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += a[i]!.toString(16) + (i < 7 ? ':' : '');
  }
  return out;
}

const SINGLE_DOT = /^(?:\.|%2e)$/i;
const DOUBLE_DOT = /^(?:\.|%2e){2}$/i;

function parsePath(rest: string): string {
  const q = rest.search(/[?#]/);
  const path = q < 0 ? rest : rest.slice(0, q);
  if (path === '') return '/';
  const segments = path.slice(1).split(/[/\\]/);
  const out: string[] = [];
  segments.forEach((raw, i) => {
    const last = i === segments.length - 1;
    let segment = '';
    if (PATH_ENCODE.test(raw)) {
      for (const ch of raw) segment += PATH_ENCODE.test(ch) ? percentEncode(ch) : ch;
    } else segment = raw;
    if (DOUBLE_DOT.test(segment)) {
      out.pop();
      if (last) out.push('');
    } else if (SINGLE_DOT.test(segment)) {
      if (last) out.push('');
    } else out.push(segment);
  });
  return `/${out.join('/')}`;
}

function percentEncode(ch: string): string {
  let out = '';
  for (const byte of utf8(ch)) out += `%${byte < 16 ? '0' : ''}${byte.toString(16).toUpperCase()}`;
  return out;
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
