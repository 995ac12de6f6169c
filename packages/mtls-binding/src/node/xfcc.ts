import { proxyError } from './proxy-error.ts';

/** The keys Envoy writes, lower-case (keys are case-insensitive, values case-sensitive). */
export type XfccKey = 'by' | 'hash' | 'cert' | 'chain' | 'subject' | 'uri' | 'dns';

/** One `key=value` pair of an XFCC element. */
export interface XfccField {
  key: XfccKey;
  /**
   * The value as written, without its quotes; escapes are kept (popkit interprets only `Hash`,
   * `Cert` and `Chain`, whose Envoy-written values never hold a backslash).
   */
  value: string;
  /** Whether the value was double-quoted. */
  quoted: boolean;
}

/** One XFCC element: the fields one proxy wrote, in order. */
export type XfccElement = XfccField[];

/** More elements than any proxy chain appends: refused. */
export const MAX_XFCC_ELEMENTS = 32;
/** More fields in one element than Envoy writes for any certificate: refused. */
export const MAX_XFCC_FIELDS = 1024;

const KEYS: ReadonlySet<string> = new Set<XfccKey>([
  'by',
  'hash',
  'cert',
  'chain',
  'subject',
  'uri',
  'dns',
]);

const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

const fail = (defect: string) => proxyError(`the x-forwarded-client-cert header ${defect}`);

/**
 * Tokenizes an `x-forwarded-client-cert` value by Envoy's rules, strictly: elements separated by
 * `,`, fields by `;`, each field `Key=value` with a key Envoy writes; a value either unquoted
 * (no `,`, `;`, `"` or `\`) or double-quoted, where a backslash escapes the next character and
 * the first unescaped `"` ends the value, which must then be followed by `;`, `,` or the end.
 * Anything else is refused (typed error, reason `certificate_unusable`): an unknown key, an
 * empty field or element, a quote inside an unquoted value, an unterminated quoted value,
 * characters after a closing quote, more than {@link MAX_XFCC_ELEMENTS} elements or
 * {@link MAX_XFCC_FIELDS} fields in one.
 *
 * One pass over the characters, no backtracking: linear in the header's length. Which fields an
 * element must have, in which order, is the caller's business (it depends on Envoy's
 * configuration); this only guarantees that every character is accounted for, one way.
 *
 * @see https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert
 * @internal
 */
export function parseXfcc(header: string): XfccElement[] {
  const n = header.length;
  const elements: XfccElement[] = [];
  let fields: XfccElement = [];
  let i = 0;
  if (n === 0) throw fail('is empty');
  for (;;) {
    // key: letters up to '='
    const keyStart = i;
    while (i < n && isLetter(header.charCodeAt(i))) i++;
    if (i === keyStart || i === n || header.charCodeAt(i) !== EQUALS)
      throw fail('has a malformed field');
    const key = header.slice(keyStart, i).toLowerCase();
    if (!KEYS.has(key)) throw fail('has an unknown field');
    i++; // '='
    let value: string;
    let quoted = false;
    if (i < n && header.charCodeAt(i) === QUOTE) {
      quoted = true;
      const start = ++i;
      // the first '"' not escaped by a backslash ends the value (a backslash escapes any one
      // character); one character at a time, so dense escapes cost what plain text does
      for (;;) {
        if (i >= n) throw fail('has an unterminated quoted value');
        const c = header.charCodeAt(i);
        if (c === QUOTE) break;
        i += c === BACKSLASH ? 2 : 1;
      }
      value = header.slice(start, i);
      i++; // closing quote
    } else {
      const start = i;
      for (; i < n; i++) {
        const c = header.charCodeAt(i);
        if (c === COMMA || c === SEMICOLON) break;
        if (c === QUOTE || c === BACKSLASH)
          throw fail('has a quote or backslash in an unquoted value');
      }
      value = header.slice(start, i);
    }
    if (fields.push({ key: key as XfccKey, value, quoted }) > MAX_XFCC_FIELDS)
      throw fail('has too many fields in one element');
    if (i === n) break;
    const separator = header.charCodeAt(i);
    if (separator === COMMA) {
      if (elements.push(fields) >= MAX_XFCC_ELEMENTS) throw fail('has too many elements');
      fields = [];
    } else if (separator !== SEMICOLON) {
      throw fail('has characters after a quoted value');
    }
    i++;
    if (i === n) throw fail('ends with a separator');
  }
  elements.push(fields);
  return elements;
}
