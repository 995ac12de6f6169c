import { base64Decode } from './base64.ts';
import { invalidCertificate } from './errors.ts';

/** Longest certificate accepted, in DER bytes. */
export const MAX_CERTIFICATE_BYTES = 32768;

/**
 * Checks that bytes are exactly one DER `SEQUENCE` (the outer shape of a certificate), with
 * a definite length that covers all of them. @internal
 */
export function isDerSequence(der: Uint8Array): boolean {
  if (der.length < 4 || der.length > MAX_CERTIFICATE_BYTES || der[0] !== 0x30) return false;
  let len = der[1]!;
  let offset = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3) return false;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | der[offset + i]!;
    offset += n;
  }
  return offset + len === der.length;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * Every `CERTIFICATE` block of a PEM text, as DER. Throws on text that has no certificate, on
 * blocks that are not base64 DER, and on any other kind of block (keys must never reach here). @internal
 */
export function pemCertificates(pem: string): Uint8Array[] {
  if (pem.length > MAX_CERTIFICATE_BYTES * 16)
    throw invalidCertificate('the PEM text is too large');
  const out: Uint8Array[] = [];
  for (const match of pem.matchAll(PEM_BLOCK)) {
    if (match[1] !== 'CERTIFICATE')
      throw invalidCertificate(`expected CERTIFICATE PEM blocks, found ${match[1]!.slice(0, 32)}`);
    const der = base64Decode(match[2]!);
    if (der === undefined || !isDerSequence(der))
      throw invalidCertificate('a PEM certificate block is not base64 DER');
    out.push(der);
  }
  if (out.length === 0) throw invalidCertificate('no PEM certificate found');
  return out;
}
