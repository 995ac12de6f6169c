import { base64Decode } from './base64.ts';
import { MAX_CERTIFICATE_BYTES, isDerSequence } from './der.ts';
import { invalidCertificate } from './errors.ts';

/** Longest PEM text read, in characters: room for a chain of 16 maximal certificates. */
export const MAX_PEM_CHARS = MAX_CERTIFICATE_BYTES * 16;
/** Most certificate blocks read from one PEM text: a leaf and a chain of 16. */
export const MAX_PEM_BLOCKS = 17;

const BEGIN = '-----BEGIN ';
const DASHES = '-----';
/** RFC 7468 §2 labels are short; anything longer is not a label. */
const MAX_LABEL = 64;

/** An RFC 7468 label as OpenSSL and every proxy writes them: upper-case letters, digits, spaces. */
function isLabel(label: string): boolean {
  if (label.length === 0 || label.length > MAX_LABEL) return false;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x20)) return false;
  }
  return true;
}

/**
 * Every `CERTIFICATE` block of a PEM text (RFC 7468), as DER. Text around the blocks is ignored
 * (OpenSSL writes "Bag Attributes" there); every `-----BEGIN ` must open a well-formed block
 * with its matching `-----END` line. Throws on text without a certificate, on a block that is
 * not base64 DER, on an unterminated block, on any other kind of block (keys must never reach
 * here), and on more than `maxBlocks` blocks (found before any block past the limit is read).
 *
 * One forward scan: each `indexOf` starts where the previous one stopped, so the work is linear
 * in the text's length whatever it holds (a regular expression with a lazy body and a
 * back-reference rescans the rest of the text for every `-----BEGIN`: quadratic). @internal
 *
 * @see https://www.rfc-editor.org/rfc/rfc7468#section-2
 */
export function pemCertificates(pem: string, maxBlocks = MAX_PEM_BLOCKS): Uint8Array[] {
  if (pem.length > MAX_PEM_CHARS) throw invalidCertificate('the PEM text is too large');
  const out: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const begin = pem.indexOf(BEGIN, at);
    if (begin < 0) break;
    if (out.length === maxBlocks)
      throw invalidCertificate(
        `the PEM text holds more than ${maxBlocks} certificate${maxBlocks === 1 ? '' : 's'}`,
      );
    const labelStart = begin + BEGIN.length;
    const labelEnd = pem.indexOf(DASHES, labelStart);
    if (
      labelEnd < 0 ||
      labelEnd - labelStart > MAX_LABEL ||
      !isLabel(pem.slice(labelStart, labelEnd))
    )
      throw invalidCertificate('a PEM BEGIN line is malformed');
    const label = pem.slice(labelStart, labelEnd);
    const bodyStart = labelEnd + DASHES.length;
    const endLine = `-----END ${label}-----`;
    const end = pem.indexOf(endLine, bodyStart);
    if (end < 0) throw invalidCertificate('a PEM block has no END line');
    if (label !== 'CERTIFICATE')
      throw invalidCertificate(`expected CERTIFICATE PEM blocks, found ${label.slice(0, 32)}`);
    const der = base64Decode(pem.slice(bodyStart, end), MAX_CERTIFICATE_BYTES);
    if (der === undefined || !isDerSequence(der))
      throw invalidCertificate('a PEM certificate block is not base64 DER');
    out.push(der);
    at = end + endLine.length;
  }
  if (out.length === 0) throw invalidCertificate('no PEM certificate found');
  return out;
}
