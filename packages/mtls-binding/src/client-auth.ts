import { base64Decode } from './base64.ts';
import type { CertificateInput } from './certificate.ts';
import { toDer } from './certificate.ts';
import { MAX_CERTIFICATE_BYTES } from './der.ts';
import type { DnMatching } from './dn.ts';
import { distinguishedNamesEqual, parseDistinguishedName } from './dn.ts';
import { bytesEqual, ipBytes } from './ip.ts';
import { certificateThumbprint } from './thumbprint.ts';
import { parseCertificate } from './x509.ts';
import { MtlsArgumentError } from './errors.ts';

/** The RFC 8705 §2.1.2 client metadata: exactly one of these identifies the certificate. */
export interface TlsClientAuthMetadata {
  tls_client_auth_subject_dn?: string;
  tls_client_auth_san_dns?: string;
  tls_client_auth_san_uri?: string;
  tls_client_auth_san_ip?: string;
  tls_client_auth_san_email?: string;
}

const FIELDS = [
  'tls_client_auth_subject_dn',
  'tls_client_auth_san_dns',
  'tls_client_auth_san_uri',
  'tls_client_auth_san_ip',
  'tls_client_auth_san_email',
] as const;

/**
 * `tls_client_auth` (RFC 8705 §2.1): does the presented certificate match the client's
 * registered subject DN or SAN? The DN is compared as structured RDNs (RFC 4514: order reversed
 * from ASN.1, multi-valued RDNs as sets, escapes decoded), each value by its attribute type's
 * equality rule (`dnMatching: 'rfc4518'`, the default, as RFC 5280 §7.1 requires: directory
 * strings case-insensitive after LDAP string preparation, `DC`/`emailAddress` ASCII
 * case-insensitive, unknown types exact) or exactly (`dnMatching: 'exact'`); SAN DNS
 * names case-insensitively, URIs and emails exactly; IP addresses as bytes, so IPv6 in any
 * textual form matches. Chain validation (a trusted CA) is the TLS server's job: call this only
 * for certificates the TLS layer (or a proxy that verified them) accepted.
 * Throws a `TypeError` when the metadata does not hold exactly one of the five fields.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-2.1.2
 */
export function matchesTlsClientAuth(
  cert: CertificateInput,
  metadata: TlsClientAuthMetadata,
  options: { dnMatching?: DnMatching } = {},
): boolean {
  const present = FIELDS.filter((f) => metadata?.[f] !== undefined);
  if (present.length !== 1)
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_VALUE',
      '"metadata" must contain exactly one tls_client_auth_* field (RFC 8705 §2.1.2)',
    );
  const field = present[0]!;
  const expected = metadata[field]!;
  if (typeof expected !== 'string')
    throw new MtlsArgumentError('ERR_INVALID_ARG_VALUE', `"metadata.${field}" must be a string`);
  const parsed = parseCertificate(toDer(cert));
  switch (field) {
    case 'tls_client_auth_subject_dn': {
      const dn = parseDistinguishedName(expected);
      if (dn === undefined) return false;
      return distinguishedNamesEqual(dn, [...parsed.subject].reverse(), options.dnMatching);
    }
    case 'tls_client_auth_san_dns':
      return parsed.san.dns.some((d) => d.toLowerCase() === expected.toLowerCase());
    case 'tls_client_auth_san_uri':
      return parsed.san.uri.includes(expected);
    case 'tls_client_auth_san_email':
      return parsed.san.email.includes(expected);
    case 'tls_client_auth_san_ip': {
      const want = ipBytes(expected);
      if (want === undefined) return false;
      return parsed.san.ip.some((ip) => {
        const got = ipBytes(ip);
        return got !== undefined && bytesEqual(got, want);
      });
    }
  }
}

/** A JWK that may carry an `x5c` chain (RFC 7517 §4.7). */
export interface JwkWithX5c {
  x5c?: readonly string[];
  [member: string]: unknown;
}

/**
 * `self_signed_tls_client_auth` (RFC 8705 §2.2): finds the key of the client's JWKS whose `x5c`
 * leaf is the presented certificate (compared by SHA-256 thumbprint). Resolves to that JWK, or
 * `undefined`. The chain is not validated, by design of the method.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-2.2
 */
export async function matchSelfSignedTlsClientAuth(
  cert: CertificateInput,
  jwks: { keys: readonly JwkWithX5c[] },
): Promise<JwkWithX5c | undefined> {
  const presented = await certificateThumbprint(cert);
  for (const jwk of jwks?.keys ?? []) {
    const first = jwk?.x5c?.[0];
    if (typeof first !== 'string') continue;
    const der = base64Decode(first, MAX_CERTIFICATE_BYTES);
    if (der === undefined) continue;
    try {
      if ((await certificateThumbprint(der)) === presented) return jwk;
    } catch {
      // not a certificate: skip this key
    }
  }
  return undefined;
}
