import { MtlsArgumentError } from './errors.ts';

/** One attribute of a relative distinguished name: an OID and its string value. */
export interface DnAttribute {
  type: string;
  value: string;
}

/** A distinguished name as RDNs, each a set of attributes. */
export type DistinguishedName = DnAttribute[][];

const NAMES: Record<string, string> = {
  cn: '2.5.4.3',
  sn: '2.5.4.4',
  serialnumber: '2.5.4.5',
  c: '2.5.4.6',
  l: '2.5.4.7',
  st: '2.5.4.8',
  street: '2.5.4.9',
  o: '2.5.4.10',
  ou: '2.5.4.11',
  title: '2.5.4.12',
  postalcode: '2.5.4.17',
  givenname: '2.5.4.42',
  dnqualifier: '2.5.4.46',
  organizationidentifier: '2.5.4.97',
  dc: '0.9.2342.19200300.100.1.25',
  uid: '0.9.2342.19200300.100.1.1',
  e: '1.2.840.113549.1.9.1',
  emailaddress: '1.2.840.113549.1.9.1',
};

/** The OID of an attribute type given by name (RFC 4514 §3 short names) or dotted OID. @internal */
export function attributeOid(type: string): string | undefined {
  const t = type.trim();
  if (/^(?:oid\.)?[0-9]+(?:\.[0-9]+)+$/i.test(t)) return t.replace(/^oid\./i, '');
  return NAMES[t.toLowerCase()];
}

const decoder = new TextDecoder();

function decodeHexValue(hex: string): string | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  // BER: tag, short or long length, contents (RFC 4514 §2.4)
  const tag = bytes[0];
  let len = bytes[1] ?? 0;
  let offset = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 2) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | (bytes[offset + i] ?? 0);
    offset += n;
  }
  const content = bytes.subarray(offset, offset + len);
  if (content.length !== len || offset + len !== bytes.length) return undefined;
  switch (tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
      return decoder.decode(content);
    case 0x14: // TeletexString, read as Latin-1
      return String.fromCharCode(...content);
    case 0x1e: {
      // BMPString, UTF-16BE
      let s = '';
      for (let i = 0; i + 1 < content.length; i += 2)
        s += String.fromCharCode((content[i]! << 8) | content[i + 1]!);
      return s;
    }
    default:
      return undefined;
  }
}

/**
 * Parses an RFC 4514 distinguished name string into RDNs, in the string's order (the reverse of
 * the certificate's ASN.1 order). Handles `+` multi-valued RDNs, `\`-escapes of special
 * characters and of UTF-8 hex pairs, `#`-hex BER values, and OIDs or short names as types.
 * Returns `undefined` for malformed input.
 *
 * @see https://www.rfc-editor.org/rfc/rfc4514#section-3
 */
export function parseDistinguishedName(dn: string): DistinguishedName | undefined {
  if (typeof dn !== 'string' || dn.length > 4096) return undefined;
  const rdns: DistinguishedName = [];
  let rdn: DnAttribute[] = [];
  let i = 0;
  const n = dn.length;
  if (dn.trim() === '') return [];
  while (i < n) {
    // attribute type
    const eq = dn.indexOf('=', i);
    if (eq < 0) return undefined;
    const oid = attributeOid(dn.slice(i, eq));
    if (oid === undefined) return undefined;
    i = eq + 1;
    while (dn[i] === ' ') i++;
    let value = '';
    if (dn[i] === '#') {
      const start = ++i;
      while (i < n && /[0-9A-Fa-f]/.test(dn[i]!)) i++;
      const decoded = decodeHexValue(dn.slice(start, i));
      if (decoded === undefined) return undefined;
      value = decoded;
      while (dn[i] === ' ') i++;
    } else {
      const bytes: number[] = [];
      let trailingUnescaped = 0;
      const flush = () => {
        if (bytes.length) {
          value += decoder.decode(new Uint8Array(bytes));
          bytes.length = 0;
        }
      };
      while (i < n && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') {
        const ch = dn[i]!;
        if (ch === '\\') {
          const next = dn[i + 1];
          if (next === undefined) return undefined;
          if (/[0-9A-Fa-f]/.test(next) && /[0-9A-Fa-f]/.test(dn[i + 2] ?? '')) {
            bytes.push(parseInt(dn.slice(i + 1, i + 3), 16));
            i += 3;
          } else if (' "#+,;<=>\\'.includes(next)) {
            flush();
            value += next;
            i += 2;
          } else {
            return undefined;
          }
          trailingUnescaped = 0;
        } else {
          if ('"<>'.includes(ch)) return undefined;
          flush();
          value += ch;
          trailingUnescaped = ch === ' ' ? trailingUnescaped + 1 : 0;
          i++;
        }
      }
      flush();
      if (trailingUnescaped) value = value.slice(0, -trailingUnescaped);
    }
    rdn.push({ type: oid, value });
    if (i >= n) break;
    const sep = dn[i];
    i++;
    while (dn[i] === ' ') i++;
    if (sep === '+') continue;
    rdns.push(rdn);
    rdn = [];
    if (i >= n) return undefined; // trailing separator
  }
  if (rdn.length) rdns.push(rdn);
  return rdns;
}

/** How DN attribute values are compared. */
export type DnMatching =
  /**
   * The equality rule of each attribute type (RFC 5280 §7.1, RFC 4517, RFC 4518): directory
   * strings (`CN`, `O`, `OU`, `L`, `ST`, `C`, `serialNumber`, `UID`, …) use `caseIgnoreMatch`
   * with the LDAP string preparation (Unicode NFKC, case folding, insignificant spaces);
   * `DC` and `emailAddress` use `caseIgnoreIA5Match` (ASCII case only, no Unicode folding);
   * attribute types without a known rule are compared exactly.
   */
  | 'rfc4518'
  /** Every value compared exactly as decoded (after RFC 4514 unescaping): no folding at all. */
  | 'exact';

/** Attribute types whose equality rule is caseIgnoreMatch (RFC 4519, X.520). */
const CASE_IGNORE = new Set([
  '2.5.4.3', // cn
  '2.5.4.4', // sn
  '2.5.4.5', // serialNumber
  '2.5.4.6', // c
  '2.5.4.7', // l
  '2.5.4.8', // st
  '2.5.4.9', // street
  '2.5.4.10', // o
  '2.5.4.11', // ou
  '2.5.4.12', // title
  '2.5.4.17', // postalCode
  '2.5.4.42', // givenName
  '2.5.4.46', // dnQualifier
  '2.5.4.97', // organizationIdentifier
  '0.9.2342.19200300.100.1.1', // uid
]);
/** Attribute types whose equality rule is caseIgnoreIA5Match. */
const CASE_IGNORE_IA5 = new Set([
  '0.9.2342.19200300.100.1.25', // dc
  '1.2.840.113549.1.9.1', // emailAddress
]);

/**
 * RFC 4518 string preparation for caseIgnoreMatch: map (controls and other spaces to SPACE),
 * case fold, normalise (NFKC), insignificant space handling. @internal
 */
export function prepareCaseIgnore(value: string): string {
  return value
    .replace(/[\t\n\v\f\r\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/g, ' ')
    .normalize('NFKC')
    .toLowerCase()
    .normalize('NFKC')
    .trim()
    .replace(/ +/g, ' ');
}

/** caseIgnoreIA5Match: ASCII letters case-insensitively, anything else exactly. @internal */
function prepareIa5(value: string): string {
  return value
    .trim()
    .replace(/ +/g, ' ')
    .replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function prepared(type: string, value: string, matching: DnMatching): string {
  if (matching === 'exact') return value;
  if (CASE_IGNORE.has(type)) return prepareCaseIgnore(value);
  if (CASE_IGNORE_IA5.has(type)) return prepareIa5(value);
  return value;
}

/**
 * One RDN as a sorted list of `type NUL prepared-value` keys: two RDNs are equal when these lists
 * are (a type, an OID, holds no NUL, so the first NUL separates the two parts). Each value is
 * prepared once, so a comparison costs O(n log n), not one preparation per pair of attributes.
 */
function rdnKeys(rdn: DnAttribute[], matching: DnMatching): string[] {
  return rdn.map((attr) => `${attr.type}\u0000${prepared(attr.type, attr.value, matching)}`).sort();
}

/**
 * Compares two DNs given in the same order as structured RDNs: same number of RDNs, and each RDN
 * the same set of (type, value) pairs, each value compared by its attribute type's equality rule
 * (`'rfc4518'`, the default) or exactly (`'exact'`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc5280#section-7.1
 * @see https://www.rfc-editor.org/rfc/rfc4518
 */
export function distinguishedNamesEqual(
  a: DistinguishedName,
  b: DistinguishedName,
  matching: DnMatching = 'rfc4518',
): boolean {
  if (matching !== 'rfc4518' && matching !== 'exact')
    throw new MtlsArgumentError('ERR_INVALID_ARG_VALUE', '"matching" must be "rfc4518" or "exact"');
  if (a.length !== b.length) return false;
  for (let r = 0; r < a.length; r++) {
    const x = a[r]!;
    const y = b[r]!;
    if (x.length !== y.length) return false;
    const xs = rdnKeys(x, matching);
    const ys = rdnKeys(y, matching);
    for (let i = 0; i < xs.length; i++) if (xs[i] !== ys[i]) return false;
  }
  return true;
}
