import { base64urlEncode } from './base64.ts';
import type { CertificateInput, CertificateInputOptions } from './certificate.ts';
import { toDer } from './certificate.ts';

/**
 * The RFC 8705 §3.1 certificate thumbprint: base64url (no padding) of the SHA-256 of the
 * certificate's DER encoding. Hashes the DER, never the PEM text or a whole bundle.
 *
 * @example
 * ```ts
 * await certificateThumbprint(pemText); // 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2'-like
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3.1
 */
export async function certificateThumbprint(
  cert: CertificateInput,
  options?: CertificateInputOptions,
): Promise<string> {
  const der = toDer(cert, options);
  return base64urlEncode(
    new Uint8Array(await crypto.subtle.digest('SHA-256', der as BufferSource)),
  );
}

/**
 * The `cnf` claim binding a token to a certificate (RFC 8705 §3.1): put it in the access token
 * (JWT) or in the introspection response (RFC 8705 §3.2).
 *
 * @example
 * ```ts
 * const claims = { sub, cnf: await certificateConfirmation(peerCertificate(req.socket)!.leaf) };
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3.1
 */
export async function certificateConfirmation(
  cert: CertificateInput,
  options?: CertificateInputOptions,
): Promise<{ 'x5t#S256': string }> {
  return { 'x5t#S256': await certificateThumbprint(cert, options) };
}
