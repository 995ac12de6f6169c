/**
 * Stable codes of {@link MtlsBindingError}:
 *
 * - `invalid_token`: the access token is not bound to the presented certificate, or no
 *   certificate was presented (RFC 8705 §3, RFC 6750 §3.1): HTTP 401.
 * - `ERR_INVALID_CERTIFICATE`: an input is not one certificate (bad PEM, a bundle where one
 *   certificate was expected, bytes that are not DER).
 * - `ERR_PROXY_HEADER`: a proxy header is malformed, ambiguous (sent twice) or too large.
 * - `ERR_PKCS12`: a PKCS#12 file cannot be read (wrong password, corrupt, no key or certificate).
 */
export type MtlsBindingErrorCode =
  'invalid_token' | 'ERR_INVALID_CERTIFICATE' | 'ERR_PROXY_HEADER' | 'ERR_PKCS12';

/** Why a binding check failed, finer than `code`. */
export type MtlsBindingReason =
  | 'certificate_missing'
  | 'certificate_mismatch'
  | 'cnf_missing'
  | 'thumbprint_hex'
  | 'thumbprint_colon_hex'
  | 'thumbprint_padded'
  | 'thumbprint_standard_base64'
  | 'thumbprint_non_canonical'
  | 'thumbprint_malformed'
  | 'invalid_input';

/**
 * The one error class of `@popkit/mtls-binding`. Messages never contain a certificate, token
 * or key. Binding failures carry `status` 401 and a ready `wwwAuthenticate` value.
 */
export class MtlsBindingError extends Error {
  readonly code: MtlsBindingErrorCode;
  readonly reason: MtlsBindingReason;
  readonly status: number;
  /** `Bearer error="invalid_token", error_description="…"` for binding failures. */
  readonly wwwAuthenticate?: string;

  constructor(
    code: MtlsBindingErrorCode,
    reason: MtlsBindingReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MtlsBindingError';
    this.code = code;
    this.reason = reason;
    this.status = code === 'invalid_token' ? 401 : 400;
    if (code === 'invalid_token') {
      this.wwwAuthenticate = `Bearer error="invalid_token", error_description="${message.replace(/["\\]/g, '')}"`;
    }
  }
}

/** @internal */
export function invalidCertificate(message: string, cause?: unknown): MtlsBindingError {
  return new MtlsBindingError(
    'ERR_INVALID_CERTIFICATE',
    'invalid_input',
    message,
    cause === undefined ? undefined : { cause },
  );
}
