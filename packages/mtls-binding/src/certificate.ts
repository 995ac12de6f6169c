import { isDerSequence } from './der.ts';
import { pemCertificates } from './pem.ts';
import { invalidCertificate } from './errors.ts';

/**
 * A certificate in any form popkit accepts: PEM text, DER bytes (`Uint8Array`, `ArrayBuffer`,
 * Node `Buffer`), Node's `X509Certificate` (`.raw`), an `@peculiar/x509` certificate
 * (`.rawData`), or the `{ raw }` object of `tls.getPeerCertificate()`.
 */
export type CertificateInput =
  | string
  | Uint8Array
  | ArrayBuffer
  | { readonly raw: Uint8Array }
  | { readonly rawData: ArrayBuffer };

/** Options for reading PEM input. */
export interface CertificateInputOptions {
  /**
   * What to do with a PEM bundle: `'only'` (default) accepts exactly one certificate and rejects
   * bundles; `'first'` takes the first block as the leaf (as proxies and chain files order them).
   */
  leaf?: 'only' | 'first';
}

/** The DER bytes of one certificate, whatever form it came in. @internal */
export function toDer(cert: CertificateInput, options: CertificateInputOptions = {}): Uint8Array {
  let der: Uint8Array;
  if (typeof cert === 'string') {
    const blocks = pemCertificates(cert);
    if (blocks.length > 1 && options.leaf !== 'first') {
      throw invalidCertificate(
        `expected one certificate, found a bundle of ${blocks.length} (pass { leaf: 'first' } to take the leaf)`,
      );
    }
    der = blocks[0]!;
  } else if (cert instanceof Uint8Array) {
    der = cert;
  } else if (cert instanceof ArrayBuffer) {
    der = new Uint8Array(cert);
  } else if (
    cert !== null &&
    typeof cert === 'object' &&
    'raw' in cert &&
    cert.raw instanceof Uint8Array
  ) {
    der = cert.raw;
  } else if (
    cert !== null &&
    typeof cert === 'object' &&
    'rawData' in cert &&
    cert.rawData instanceof ArrayBuffer
  ) {
    der = new Uint8Array(cert.rawData);
  } else {
    throw invalidCertificate('expected a PEM string, DER bytes or an X509Certificate');
  }
  if (!isDerSequence(der)) throw invalidCertificate('the certificate is not DER');
  return der;
}
