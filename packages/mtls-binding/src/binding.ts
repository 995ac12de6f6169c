import type { CertificateInput, CertificateInputOptions } from './certificate.ts';
import type { MtlsBindingReason } from './errors.ts';
import { MtlsBindingError } from './errors.ts';
import { certificateThumbprint } from './thumbprint.ts';

const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Checks that a value is spelled as RFC 8705 §3.1 requires (43 base64url characters, no padding,
 * canonical final character) and, if not, names the mistake: hex, colon-separated hex (Node's
 * `fingerprint256`, Envoy's `Hash`, CloudFront's `-Sha256`), padding, the standard base64
 * alphabet, or non-zero unused bits in the last character. Returns `undefined` when well formed.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3.1
 */
export function thumbprintFormatError(value: unknown): MtlsBindingReason | undefined {
  if (typeof value !== 'string') return 'thumbprint_malformed';
  if (/^[0-9A-Fa-f]{64}$/.test(value)) return 'thumbprint_hex';
  if (/^(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/.test(value)) return 'thumbprint_colon_hex';
  if (/^[A-Za-z0-9_\-+/]{43}=$/.test(value)) return 'thumbprint_padded';
  if (/^[A-Za-z0-9+/]{43}$/.test(value) && /[+/]/.test(value)) return 'thumbprint_standard_base64';
  if (!/^[A-Za-z0-9_-]{43}$/.test(value)) return 'thumbprint_malformed';
  // 43 characters carry 258 bits for a 256-bit hash: the last 2 bits must be zero.
  if ((URL_ALPHABET.indexOf(value[42]!) & 0x03) !== 0) return 'thumbprint_non_canonical';
  return undefined;
}

const FORMAT_MESSAGES: Partial<Record<MtlsBindingReason, string>> = {
  thumbprint_hex: 'The token x5t#S256 is hex; RFC 8705 requires base64url',
  thumbprint_colon_hex:
    'The token x5t#S256 is colon-separated hex (a fingerprint); RFC 8705 requires base64url',
  thumbprint_padded: 'The token x5t#S256 has = padding; RFC 8705 forbids it',
  thumbprint_standard_base64:
    'The token x5t#S256 uses the standard base64 alphabet; RFC 8705 requires base64url',
  thumbprint_non_canonical: 'The token x5t#S256 has a non-canonical last character',
  thumbprint_malformed: 'The token x5t#S256 is not a base64url SHA-256 thumbprint',
};

function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Claims of a JWT access token or an introspection response, or a bare `cnf` object. */
export type ConfirmationSource =
  | {
      readonly cnf?: Readonly<Record<string, unknown>> | undefined;
      readonly [claim: string]: unknown;
    }
  | { readonly 'x5t#S256': unknown; readonly [member: string]: unknown };

/**
 * Verifies that a token is bound to the certificate presented on this connection (RFC 8705 §3):
 * accepts the token's claims (JWT or RFC 7662 introspection response, where `cnf` is top-level)
 * or the `cnf` object itself; checks the expected value's spelling strictly; compares in
 * constant time. Resolves to the thumbprint; throws {@link MtlsBindingError} with `code`
 * `invalid_token`, `status` 401 and a ready `wwwAuthenticate` for a missing certificate
 * (`reason: 'certificate_missing'`), a mismatch (`'certificate_mismatch'`), a token without
 * `cnf["x5t#S256"]` (`'cnf_missing'`) or a malformed value (`'thumbprint_*'`).
 *
 * @example
 * ```ts
 * await verifyCertificateBinding(claims, peerCertificate(req)?.leaf);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3
 */
export async function verifyCertificateBinding(
  claimsOrCnf: ConfirmationSource,
  cert: CertificateInput | undefined | null,
  options?: CertificateInputOptions,
): Promise<string> {
  const source = claimsOrCnf as Record<string, unknown> | null;
  const cnf =
    source !== null && typeof source === 'object'
      ? 'x5t#S256' in source
        ? source
        : source.cnf
      : undefined;
  const expected =
    cnf !== null && typeof cnf === 'object'
      ? (cnf as Record<string, unknown>)['x5t#S256']
      : undefined;
  if (expected === undefined) {
    throw new MtlsBindingError('cnf_missing', 'The access token is not bound to a certificate');
  }
  const formatError = thumbprintFormatError(expected);
  if (formatError !== undefined)
    throw new MtlsBindingError(formatError, FORMAT_MESSAGES[formatError]!);
  if (cert === undefined || cert === null) {
    throw new MtlsBindingError(
      'certificate_missing',
      'This access token requires the client certificate it is bound to',
    );
  }
  let presented: string;
  try {
    presented = await certificateThumbprint(cert, options);
  } catch (cause) {
    // the presented certificate is the client's input: unusable, not a caller mistake
    throw new MtlsBindingError(
      'certificate_unusable',
      'The presented client certificate cannot be used',
      { cause },
    );
  }
  if (!timingSafeEqual(presented, expected as string)) {
    throw new MtlsBindingError(
      'certificate_mismatch',
      'The access token is not bound to the presented client certificate',
    );
  }
  return presented;
}
