/**
 * The error scheme shared by the three popkit packages (see docs/DESIGN.md, "Errors"):
 *
 * - **Verification outcomes** carry the OAuth error as `code` (here always `invalid_token`,
 *   RFC 6750 §3.1 / RFC 8705 §3: HTTP 401) and the precise cause as `reason`, for metrics.
 * - **Argument and configuration mistakes** are {@link MtlsArgumentError}, a `TypeError` with a
 *   Node-style `code` (`ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`) whose message names the
 *   argument.
 */
export type MtlsBindingErrorCode = 'invalid_token';

/** Why a binding check failed, finer than `code`. Stable strings; never request data. */
export type MtlsBindingReason =
  | 'certificate_missing'
  | 'certificate_mismatch'
  /** The presented certificate or the proxy header carrying it cannot be used: malformed,
   * sent twice, oversized, ambiguous, or inconsistent with its own hash. */
  | 'certificate_unusable'
  | 'cnf_missing'
  | 'thumbprint_hex'
  | 'thumbprint_colon_hex'
  | 'thumbprint_padded'
  | 'thumbprint_standard_base64'
  | 'thumbprint_non_canonical'
  | 'thumbprint_malformed';

/**
 * A verification outcome of `@popkit/mtls-binding`: the access token cannot be used with the
 * certificate presented (or with none). It has the shape of the verifier's `DPoPError`
 * (`code`, `reason`, `status`, `headers` with `WWW-Authenticate` and `Cache-Control`, `body`,
 * `toResponse()`), so one serialiser answers both. Messages never contain a certificate, token
 * or key.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export class MtlsBindingError extends Error {
  readonly code: MtlsBindingErrorCode = 'invalid_token';
  readonly reason: MtlsBindingReason;
  readonly status = 401;
  /** `WWW-Authenticate` (`Bearer error="invalid_token", error_description="…"`) and `Cache-Control: no-store`. */
  readonly headers: Readonly<Record<string, string>>;
  /** No body: RFC 6750 §3 puts the error in the challenge. */
  readonly body: undefined = undefined;
  /** The `WWW-Authenticate` value alone. @deprecated use `headers['WWW-Authenticate']`. */
  readonly wwwAuthenticate: string;

  constructor(reason: MtlsBindingReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MtlsBindingError';
    this.reason = reason;
    // RFC 6750 §3: quoted-string; `"` and `\` dropped, control characters too
    const description = message.replace(/["\\\x00-\x1f\x7f]/g, '');
    this.wwwAuthenticate = `Bearer error="invalid_token", error_description="${description}"`;
    this.headers = Object.freeze({
      'WWW-Authenticate': this.wwwAuthenticate,
      'Cache-Control': 'no-store',
    });
  }

  /** A Web `Response` for this error (Hono, Workers, Next.js middleware). */
  toResponse(): Response {
    return new Response(null, { status: this.status, headers: this.headers });
  }
}

/**
 * A bad argument or option: not a certificate where one was expected, an unreadable PKCS#12
 * file, an unknown proxy name. Thrown when the caller (not the remote client) is at fault.
 */
export class MtlsArgumentError extends TypeError {
  readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';
  constructor(
    code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MtlsArgumentError';
    this.code = code;
  }
}

/** @internal */
export function invalidCertificate(message: string, cause?: unknown): MtlsArgumentError {
  return new MtlsArgumentError(
    'ERR_INVALID_ARG_VALUE',
    message,
    cause === undefined ? undefined : { cause },
  );
}
