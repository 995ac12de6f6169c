import { base64Decode } from '../base64.ts';
import { isDerSequence, pemCertificates } from '../der.ts';
import { hash } from 'node:crypto';
import { MtlsArgumentError, MtlsBindingError } from '../errors.ts';
import type { PresentedCertificate } from './forwarded.ts';

/** TLS-terminating proxies whose client-certificate headers popkit reads. */
export type ProxyKind =
  | 'rfc9440'
  | 'envoy'
  | 'nginx'
  | 'haproxy'
  | 'apache'
  | 'traefik'
  | 'aws-alb'
  | 'azure'
  | 'cloudflare';

/** Default header per proxy (lower-case). */
export const PROXY_HEADERS: Readonly<Record<ProxyKind, string>> = Object.freeze({
  rfc9440: 'client-cert',
  envoy: 'x-forwarded-client-cert',
  nginx: 'ssl-client-cert',
  haproxy: 'x-ssl-client-cert',
  apache: 'ssl_client_cert',
  traefik: 'x-forwarded-tls-client-cert',
  'aws-alb': 'x-amzn-mtls-clientcert-leaf',
  azure: 'x-arr-clientcert',
  cloudflare: 'client-cert',
});

/** Options of {@link certificateFromHeaders}. */
export interface CertificateFromHeadersOptions {
  /** The proxy in front of this server. Without it no header is trusted and the result is `undefined`. */
  proxy?: ProxyKind;
  /** Header name, when not the proxy's default. */
  header?: string;
  /** RFC 9440 chain header. Default `client-cert-chain`. */
  chainHeader?: string;
  /**
   * Envoy: which `x-forwarded-client-cert` element to read (each proxy appends one). Default 0,
   * the element added by the edge proxy (configure it with `SANITIZE_SET`); negative counts from
   * the end.
   */
  element?: number;
  /** Longest header value accepted. Default 65536. */
  maxLength?: number;
}

/** Request headers: Web `Headers`, Node's header record, or a request with `rawHeaders`. */
export type HeaderSource =
  | Headers
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | { readonly headers: unknown; readonly rawHeaders?: readonly string[] };

/** Unusable certificate information from the client's side: 401 `invalid_token`. */
function proxyError(message: string, cause?: unknown): MtlsBindingError {
  return new MtlsBindingError(
    'certificate_unusable',
    message,
    cause === undefined ? undefined : { cause },
  );
}

const MAX_ELEMENT = 16;

/**
 * Validates the options of {@link certificateFromHeaders} (a misspelled proxy, an element
 * position out of range): called when a certificate source is built, so typos fail at start-up
 * rather than on every request.
 */
export function checkHeaderOptions(options: CertificateFromHeadersOptions): void {
  if (options === null || typeof options !== 'object')
    throw new MtlsArgumentError('ERR_INVALID_ARG_TYPE', '"options" must be an object');
  const { proxy, header, chainHeader, element, maxLength } = options;
  if (proxy !== undefined && !Object.hasOwn(PROXY_HEADERS, proxy)) {
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `"proxy" must be one of ${Object.keys(PROXY_HEADERS).join(', ')}`,
    );
  }
  for (const [name, value] of [
    ['header', header],
    ['chainHeader', chainHeader],
  ] as const) {
    if (
      value !== undefined &&
      (typeof value !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(value))
    )
      throw new MtlsArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must be a header name`);
  }
  if (element !== undefined) {
    if (proxy !== 'envoy')
      throw new MtlsArgumentError(
        'ERR_INVALID_ARG_VALUE',
        '"element" applies to proxy "envoy" only',
      );
    if (!Number.isInteger(element) || element < -MAX_ELEMENT || element >= MAX_ELEMENT)
      throw new MtlsArgumentError(
        'ERR_INVALID_ARG_VALUE',
        `"element" must be an integer from ${-MAX_ELEMENT} to ${MAX_ELEMENT - 1}`,
      );
  }
  if (
    maxLength !== undefined &&
    (!Number.isInteger(maxLength) || maxLength < 1024 || maxLength > 1_048_576)
  )
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_VALUE',
      '"maxLength" must be an integer from 1024 to 1048576',
    );
}

function values(source: HeaderSource, name: string): string[] {
  const raw = (source as { rawHeaders?: readonly string[] }).rawHeaders;
  if (Array.isArray(raw)) {
    const out: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2)
      if (String(raw[i]).toLowerCase() === name) out.push(String(raw[i + 1]));
    return out;
  }
  const nested = (source as { headers?: unknown }).headers;
  const headers = (
    source instanceof Headers || nested === null || typeof nested !== 'object' ? source : nested
  ) as Headers | Record<string, unknown>;
  if (typeof (headers as Headers).get === 'function') {
    const v = (headers as Headers).get(name);
    return v === null ? [] : [v];
  }
  const v = (headers as Record<string, unknown>)[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

function one(
  source: HeaderSource,
  name: string,
  maxLength: number,
  commaAllowed: boolean,
): string | undefined {
  const all = values(source, name);
  if (all.length === 0) return undefined;
  if (all.length > 1) throw proxyError(`the ${name} header was sent more than once`);
  const value = all[0]!.trim();
  if (value.length > maxLength) throw proxyError(`the ${name} header is too large`);
  if (!commaAllowed && value.includes(','))
    throw proxyError(`the ${name} header is ambiguous (several values)`);
  return value;
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
    ? value.slice(1, -1)
    : value;
}

function der(base64: string, what: string): Uint8Array {
  const bytes = base64Decode(base64);
  if (bytes === undefined || !isDerSequence(bytes))
    throw proxyError(`the ${what} is not a base64 DER certificate`);
  return bytes;
}

function urlDecode(value: string, what: string): string {
  try {
    // decodeURIComponent, never form decoding: a "+" in base64 must stay a "+" (AWS ALB keeps +=/ unescaped).
    return decodeURIComponent(value);
  } catch (cause) {
    throw proxyError(`the ${what} is not valid percent-encoding`, cause);
  }
}

function fromPem(pem: string, what: string): PresentedCertificate {
  let blocks: Uint8Array[];
  try {
    blocks = pemCertificates(pem);
  } catch (cause) {
    throw proxyError(`the ${what} is not a PEM certificate`, cause);
  }
  return { leaf: blocks[0]!, chain: blocks.slice(1) };
}

/** A PEM whose line breaks a proxy replaced by spaces, or stripped: recover the base64 body. */
function loosePem(value: string, what: string): PresentedCertificate {
  const blocks = [
    ...value.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g),
  ];
  if (blocks.length === 0) return { leaf: der(value, what), chain: [] };
  const all = blocks.map((b) => der(b[1]!.replace(/\s+/g, ''), what));
  return { leaf: all[0]!, chain: all.slice(1) };
}

/** Splits on a separator outside double quotes (backslash escapes inside quotes). */
function splitOutsideQuotes(value: string, separator: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted && ch === '\\' && i + 1 < value.length) {
      current += ch + value[i + 1];
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
      current += ch;
    } else if (ch === separator && !quoted) {
      out.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (quoted)
    throw proxyError('the x-forwarded-client-cert header has an unterminated quoted value');
  out.push(current);
  return out;
}

/** The XFCC keys Envoy writes (case-insensitive). */
const XFCC_KEYS = new Set(['by', 'hash', 'cert', 'chain', 'subject', 'uri', 'dns']);
/** Keys that a SAN may repeat. */
const XFCC_REPEATABLE = new Set(['uri', 'dns']);

/**
 * Parses one XFCC element strictly: every character must be accounted for, so no value a client
 * controls (a SAN of its certificate) can add a field or an element unnoticed.
 */
function xfccElement(element: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const pair of splitOutsideQuotes(element, ';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw proxyError('the x-forwarded-client-cert header has a malformed element');
    const key = pair.slice(0, eq).trim().toLowerCase();
    const rawValue = pair.slice(eq + 1).trim();
    if (!XFCC_KEYS.has(key))
      throw proxyError('the x-forwarded-client-cert header has an unknown field');
    let value: string;
    if (rawValue.startsWith('"')) {
      if (rawValue.length < 2 || !rawValue.endsWith('"'))
        throw proxyError('the x-forwarded-client-cert header has a malformed quoted value');
      value = rawValue.slice(1, -1).replace(/\\(.)/g, '$1');
    } else {
      // Envoy writes URI and DNS SANs unquoted and unescaped: a SAN holding ",Hash=…;Cert=…"
      // would read as fields of its own. Unquoted SAN fields are therefore refused outright
      // (configure Envoy not to forward them), and no unquoted value may hold '=' or '"'.
      if (XFCC_REPEATABLE.has(key))
        throw proxyError(
          'the x-forwarded-client-cert header carries unquoted SAN fields, which are ambiguous',
        );
      if (/[="]/.test(rawValue))
        throw proxyError('the x-forwarded-client-cert header has an ambiguous value');
      value = rawValue;
    }
    const list = fields.get(key);
    if (list === undefined) fields.set(key, [value]);
    else if (XFCC_REPEATABLE.has(key)) list.push(value);
    else throw proxyError('the x-forwarded-client-cert header repeats a field in one element');
  }
  return fields;
}

function parseXfcc(value: string, element: number): PresentedCertificate | undefined {
  const elements = splitOutsideQuotes(value, ',').map((e) => e.trim());
  if (elements.some((e) => e === ''))
    throw proxyError('the x-forwarded-client-cert header has an empty element');
  // Every element is parsed, not only the chosen one: an injected field anywhere is refused.
  const parsed = elements.map(xfccElement);
  const index = element < 0 ? parsed.length + element : element;
  const chosen = parsed[index];
  if (chosen === undefined)
    throw proxyError(
      'the x-forwarded-client-cert header has no element at the configured position',
    );
  const cert = chosen.get('cert')?.[0];
  const chain = chosen.get('chain')?.[0];
  if (cert === undefined && chain === undefined) return undefined; // the peer, without its certificate
  const presented = cert
    ? {
        leaf: fromPem(
          urlDecode(cert, 'x-forwarded-client-cert Cert'),
          'x-forwarded-client-cert Cert',
        ).leaf,
        chain: chain
          ? fromPem(
              urlDecode(chain, 'x-forwarded-client-cert Chain'),
              'x-forwarded-client-cert Chain',
            ).chain
          : [],
      }
    : fromPem(urlDecode(chain!, 'x-forwarded-client-cert Chain'), 'x-forwarded-client-cert Chain');
  // The certificate must be the one Envoy hashed for this element.
  const expected = chosen.get('hash')?.[0];
  if (expected === undefined || hash('sha256', presented.leaf, 'hex') !== expected.toLowerCase())
    throw proxyError('the x-forwarded-client-cert certificate does not match its Hash');
  return presented;
}

function sfBinary(item: string, what: string): Uint8Array {
  const trimmed = item.trim();
  if (!/^:[A-Za-z0-9+/]*={0,2}:$/.test(trimmed))
    throw proxyError(`the ${what} is not an RFC 9440 byte sequence`);
  return der(trimmed.slice(1, -1), what);
}

const ABSENT = new Set(['', '-', '(null)', 'null']);

/**
 * Reads the client certificate a TLS-terminating proxy forwarded, for the proxy you name. No
 * `proxy`, no trust: the result is `undefined` and every header is ignored. The proxy **must**
 * remove client-sent copies of the header (otherwise anyone can claim any certificate).
 *
 * | proxy | default header | format |
 * | --- | --- | --- |
 * | `rfc9440` | `client-cert` (+ `client-cert-chain`) | `:base64 DER:` byte sequences (RFC 9440) |
 * | `envoy` | `x-forwarded-client-cert` | XFCC elements; `Cert`/`Chain` URL-encoded PEM; element chosen by `element` |
 * | `nginx` | `ssl-client-cert` | `$ssl_client_escaped_cert`: URL-encoded PEM |
 * | `haproxy` | `x-ssl-client-cert` | `%{+Q}[ssl_c_der,base64]`: (quoted) base64 DER |
 * | `apache` | `ssl_client_cert` | PEM, line breaks kept, spaced or stripped |
 * | `traefik` | `x-forwarded-tls-client-cert` | base64 DER list, leaf first; v2 URL-escaped, v3 raw |
 * | `aws-alb` | `x-amzn-mtls-clientcert-leaf` | URL-encoded PEM with `+=/` unescaped (passthrough mode: `x-amzn-mtls-clientcert`, whole chain) |
 * | `azure` | `x-arr-clientcert` | base64 DER |
 * | `cloudflare` | `client-cert` | RFC 9440 via Transform Rules, or base64 DER (`cf-client-cert-der-base64`) |
 *
 * Throws {@link MtlsBindingError} (`invalid_token`, reason `certificate_unusable`: a 401, never
 * a 5xx) for a header sent twice, an oversized, malformed or ambiguous value; never crashes on
 * garbage. Envoy's `x-forwarded-client-cert` is parsed strictly: unknown or repeated fields,
 * unquoted URI/DNS SAN fields (Envoy does not escape them, so a SAN could inject fields), and a
 * `Cert`/`Chain` that does not match the element's `Hash` are all refused. Bad options are an
 * {@link MtlsArgumentError}.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9440
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-6.5
 */
export function certificateFromHeaders(
  headers: HeaderSource,
  options: CertificateFromHeadersOptions = {},
): PresentedCertificate | undefined {
  checkHeaderOptions(options);
  const { proxy } = options;
  if (proxy === undefined) return undefined;
  const name = (options.header ?? PROXY_HEADERS[proxy]).toLowerCase();
  const maxLength = options.maxLength ?? 65536;
  const multi = proxy === 'envoy' || proxy === 'traefik';
  const raw = one(headers, name, maxLength, multi);
  if (raw === undefined || ABSENT.has(raw)) return undefined;
  switch (proxy) {
    case 'rfc9440':
    case 'cloudflare': {
      if (proxy === 'cloudflare' && !raw.startsWith(':'))
        return { leaf: der(unquote(raw), name), chain: [] };
      const leaf = sfBinary(raw, name);
      const chainName = (options.chainHeader ?? 'client-cert-chain').toLowerCase();
      const chainValue = values(headers, chainName);
      // RFC 9440 §2.2: the chain is a list and may arrive over several field lines.
      const joined = chainValue.join(',');
      if (joined.length > maxLength) throw proxyError(`the ${chainName} header is too large`);
      const chain =
        joined.trim() === '' ? [] : joined.split(',').map((item) => sfBinary(item, chainName));
      return { leaf, chain };
    }
    case 'envoy':
      return parseXfcc(raw, options.element ?? 0);
    case 'nginx':
    case 'aws-alb':
      return fromPem(urlDecode(raw, name), name);
    case 'haproxy':
    case 'azure':
      return { leaf: der(unquote(raw), name), chain: [] };
    case 'apache':
      return loosePem(unquote(raw), name);
    case 'traefik': {
      const decoded = raw.includes('%') ? urlDecode(raw, name) : raw;
      const all = decoded.split(',').map((item) => der(unquote(item.trim()), name));
      return { leaf: all[0]!, chain: all.slice(1) };
    }
  }
}
