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
