// The WHATWG URL parser for http(s) URLs, for runtimes whose `URL` is not WHATWG-conformant
// (React Native's polyfill returns the URL as written) or missing. Only the `react-native`
// branch of `#wire-url` loads it: browsers, Node, Deno, Bun and Workers have a WHATWG URL.
import { utf8 } from './base64url.ts';

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
