import { base64Decode } from '../base64.ts';
import { MAX_CERTIFICATE_BYTES, isDerSequence } from '../der.ts';
import { MtlsArgumentError } from '../errors.ts';
import { pemCertificates } from '../pem.ts';
import type { EnvoyClientCertDetails } from './envoy.ts';
import { envoyPlan, readEnvoyCertificate } from './envoy.ts';
import type { PresentedCertificate } from './forwarded.ts';
import { MAX_CHAIN } from './forwarded.ts';
import { proxyError } from './proxy-error.ts';

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

/** Options of {@link certificateFromHeaders}. */
export interface CertificateFromHeadersOptions {
  /** The proxy in front of this server. Without it no header is trusted and the result is `undefined`. */
  proxy?: ProxyKind;
  /** Header name, when not the proxy's default. */
  header?: string;
  /** RFC 9440 chain header. Default `client-cert-chain`. */
  chainHeader?: string;
  /**
   * Envoy: which `x-forwarded-client-cert` element to read. `0` (default): the first, written by
   * the edge Envoy with `forward_client_cert_details: SANITIZE_SET`. `-1` … `-16`: counted from
   * the end, when Envoys append with `APPEND_FORWARD` (`-1`: the Envoy in front of this server).
   * A positive position is refused (a client certificate's SANs could forge it).
   */
  element?: number;
  /**
   * Envoy: its `set_current_client_cert_details` for that element (default `{ cert: true }`).
   * The element must hold exactly the fields Envoy writes for it. `uri` and `dns` are refused
   * with a negative `element`: Envoy writes SANs unescaped.
   */
  details?: EnvoyClientCertDetails;
  /** Longest header value accepted, from 1024 to 262144 (256 KiB). Default 65536. */
  maxLength?: number;
}

/** Request headers: Web `Headers`, Node's header record, or a request with `rawHeaders`. */
export type HeaderSource =
  | Headers
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | { readonly headers: unknown; readonly rawHeaders?: readonly string[] };

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * The largest `maxLength` accepted: 256 KiB, four times a chain of 16 RSA-4096 certificates
 * URL-encoded (Node's own limit for all headers together is 16 KiB unless raised).
 */
export const MAX_HEADER_LENGTH = 262_144;
/** The default `maxLength`. */
export const DEFAULT_HEADER_LENGTH = 65_536;

/** Reads the certificate from a request's headers, for options checked once. */
type HeaderReader = (headers: HeaderSource) => PresentedCertificate | undefined;

/**
 * Checks the options of {@link certificateFromHeaders} (a misspelled proxy, an Envoy element or
 * `details` that a client certificate could subvert) and returns the reader for them: called
 * when a certificate source is built, so mistakes fail at start-up, never per request.
 * @internal
 */
export function headerReader(options: CertificateFromHeadersOptions): HeaderReader {
  if (options === null || typeof options !== 'object')
    throw new MtlsArgumentError('ERR_INVALID_ARG_TYPE', '"options" must be an object');
  const { proxy, header, chainHeader, element, details, maxLength } = options;
  if (proxy !== undefined && !Object.hasOwn(PROXY_FORMATS, proxy)) {
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `"proxy" must be one of ${Object.keys(PROXY_FORMATS).join(', ')}`,
    );
  }
  for (const [name, value] of [
    ['header', header],
    ['chainHeader', chainHeader],
  ] as const) {
    if (value !== undefined && (typeof value !== 'string' || !HEADER_NAME.test(value)))
      throw new MtlsArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must be a header name`);
  }
  for (const [name, value] of [
    ['element', element],
    ['details', details],
  ] as const) {
    if (value !== undefined && proxy !== 'envoy')
      throw new MtlsArgumentError(
        'ERR_INVALID_ARG_VALUE',
        `"${name}" applies to proxy "envoy" only`,
      );
  }
  if (
    maxLength !== undefined &&
    (!Number.isInteger(maxLength) || maxLength < 1024 || maxLength > MAX_HEADER_LENGTH)
  )
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `"maxLength" must be an integer from 1024 to ${MAX_HEADER_LENGTH}`,
    );
  if (proxy === undefined) return () => undefined;
  const name = (header ?? PROXY_FORMATS[proxy].header).toLowerCase();
  const chainName = (chainHeader ?? 'client-cert-chain').toLowerCase();
  const limit = maxLength ?? DEFAULT_HEADER_LENGTH;
  if (proxy === 'envoy') {
    const plan = envoyPlan(element, details);
    return (headers) => {
      const raw = one(headers, name, limit, PROXY_FORMATS.envoy.list);
      return raw === undefined || ABSENT.has(raw) ? undefined : readEnvoyCertificate(raw, plan);
    };
  }
  const format = PROXY_FORMATS[proxy];
  const read = format.read!;
  return (headers) => {
    const raw = one(headers, name, limit, format.list);
    if (raw === undefined || ABSENT.has(raw)) return undefined;
    return read(raw, { name, headers, chainName, maxLength: limit });
  };
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
  // the bound comes first, on the value as received: nothing longer is even trimmed
  if (all[0]!.length > maxLength) throw proxyError(`the ${name} header is too large`);
  const value = all[0]!.trim();
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
  const bytes = base64Decode(base64, MAX_CERTIFICATE_BYTES);
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
    blocks = pemCertificates(pem, MAX_CHAIN + 1);
  } catch (cause) {
    throw proxyError(`the ${what} is not a PEM certificate chain popkit reads`, cause);
  }
  return { leaf: blocks[0]!, chain: blocks.slice(1) };
}

/**
 * Apache's `%{SSL_CLIENT_CERT}s`: PEM whose line breaks the proxy kept, replaced by spaces or
 * stripped (the linear PEM scanner ignores whitespace in the body), or bare base64 DER.
 */
function loosePem(value: string, what: string): PresentedCertificate {
  return value.includes('-----BEGIN ')
    ? fromPem(value, what)
    : { leaf: der(value, what), chain: [] };
}

function sfBinary(item: string, what: string): Uint8Array {
  const trimmed = item.trim();
  if (!/^:[A-Za-z0-9+/]*={0,2}:$/.test(trimmed))
    throw proxyError(`the ${what} is not an RFC 9440 byte sequence`);
  return der(trimmed.slice(1, -1), what);
}

const ABSENT = new Set(['', '-', '(null)', 'null']);

/**
 * The items of a comma-separated list, each read as soon as it is cut out: the first bad item
 * throws before the rest is looked at, and no list longer than `max` is read.
 */
function list<T>(text: string, max: number, what: string, read: (item: string) => T): T[] {
  const out: T[] = [];
  for (let start = 0; ;) {
    const comma = text.indexOf(',', start);
    if (out.push(read(text.slice(start, comma < 0 ? text.length : comma))) > max)
      throw proxyError(`the ${what} header holds too many certificates`);
    if (comma < 0) return out;
    start = comma + 1;
  }
}

/**
 * Reads the client certificate a TLS-terminating proxy forwarded, for the proxy you name. No
 * `proxy`, no trust: the result is `undefined` and every header is ignored. The proxy **must**
 * remove client-sent copies of the header (otherwise anyone can claim any certificate).
 *
 * | proxy | default header | format |
 * | --- | --- | --- |
 * | `rfc9440` | `client-cert` (+ `client-cert-chain`) | `:base64 DER:` byte sequences (RFC 9440) |
 * | `envoy` | `x-forwarded-client-cert` | XFCC elements; `Cert`/`Chain` URL-encoded PEM; the element chosen by `element`, its fields by `details` |
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
 * garbage; every parser is one linear pass over a value of at most `maxLength` characters.
 * Envoy's `x-forwarded-client-cert` is tokenized by Envoy's quoting rules and the chosen element
 * must hold exactly the fields Envoy writes for `details`, in Envoy's order, with a `Cert` or
 * `Chain` leaf whose SHA-256 is the element's `Hash`; configurations in which a client
 * certificate's SANs could forge an element (`uri`/`dns` with a negative `element`, a positive
 * `element`) are refused up front. Bad options are an {@link MtlsArgumentError}, thrown on each
 * call here and once by `certificateThumbprintSource`, when the source is built.
 *
 * @see https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert
 * @see https://www.rfc-editor.org/rfc/rfc9440
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-6.5
 */
export function certificateFromHeaders(
  headers: HeaderSource,
  options: CertificateFromHeadersOptions = {},
): PresentedCertificate | undefined {
  return headerReader(options)(headers);
}

/** What a format's reader gets besides the header value. @internal */
interface ReadContext {
  readonly name: string;
  readonly headers: HeaderSource;
  readonly chainName: string;
  readonly maxLength: number;
}

/**
 * One entry per TLS-terminating proxy: its default header, whether that header may arrive as
 * several field lines (joined by `,`), and its reader (linear and bounded). Envoy's XFCC has its
 * own, configured reader ({@link readEnvoyCertificate}); a new format is one entry here and its
 * name in {@link ProxyKind}. @internal
 */
interface ProxyFormat {
  readonly header: string;
  readonly list: boolean;
  readonly read?: (raw: string, context: ReadContext) => PresentedCertificate;
}

function rfc9440(raw: string, { name, headers, chainName, maxLength }: ReadContext) {
  const leaf = sfBinary(raw, name);
  // RFC 9440 §2.2: the chain is a list and may arrive over several field lines.
  const joined = values(headers, chainName).join(',');
  if (joined.length > maxLength) throw proxyError(`the ${chainName} header is too large`);
  const chain =
    joined.trim() === '' ? [] : list(joined, MAX_CHAIN, chainName, (i) => sfBinary(i, chainName));
  return { leaf, chain };
}
const base64Der = (raw: string, { name }: ReadContext) => ({
  leaf: der(unquote(raw), name),
  chain: [],
});
const escapedPem = (raw: string, { name }: ReadContext) => fromPem(urlDecode(raw, name), name);

/** The registry of proxy formats. @internal */
const PROXY_FORMATS: Readonly<Record<ProxyKind, ProxyFormat>> = {
  rfc9440: { header: 'client-cert', list: false, read: rfc9440 },
  envoy: { header: 'x-forwarded-client-cert', list: true },
  nginx: { header: 'ssl-client-cert', list: false, read: escapedPem },
  haproxy: { header: 'x-ssl-client-cert', list: false, read: base64Der },
  apache: {
    header: 'ssl_client_cert',
    list: false,
    read: (raw, { name }) => loosePem(unquote(raw), name),
  },
  traefik: {
    header: 'x-forwarded-tls-client-cert',
    list: true,
    read: (raw, { name }) => {
      const decoded = raw.includes('%') ? urlDecode(raw, name) : raw;
      const all = list(decoded, MAX_CHAIN + 1, name, (item) => der(unquote(item.trim()), name));
      return { leaf: all[0]!, chain: all.slice(1) };
    },
  },
  'aws-alb': { header: 'x-amzn-mtls-clientcert-leaf', list: false, read: escapedPem },
  azure: { header: 'x-arr-clientcert', list: false, read: base64Der },
  // Cloudflare forwards RFC 9440 byte sequences, or plain base64 DER
  cloudflare: {
    header: 'client-cert',
    list: false,
    read: (raw, context) => (raw.startsWith(':') ? rfc9440(raw, context) : base64Der(raw, context)),
  },
};

/** Default header per proxy (lower-case), from the registry. */
export const PROXY_HEADERS: Readonly<Record<ProxyKind, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(PROXY_FORMATS).map(([kind, format]) => [kind, format.header]),
  ) as Record<ProxyKind, string>,
);
