/**
 * Compares two strings in time that depends only on their lengths (which are public here:
 * hashes, thumbprints and nonces have fixed lengths). @internal
 */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
