const SEGMENT = /^[A-Za-z0-9_-]+$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Strict base64url segment check (RFC 7515 §2, RFC 4648 §5): URL-safe alphabet only (no `+`,
 * `/`, `=` padding or whitespace), a possible length, and zero unused trailing bits, so each
 * value has exactly one accepted spelling. @internal
 */
export function isStrictBase64url(segment: string): boolean {
  const rem = segment.length % 4;
  if (rem === 1 || !SEGMENT.test(segment)) return false;
  if (rem === 0) return true;
  const last = ALPHABET.indexOf(segment[segment.length - 1]!);
  return (last & (rem === 2 ? 0x0f : 0x03)) === 0;
}
