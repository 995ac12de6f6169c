import { decodeBase64urlText } from '#crypto';

/** A base64url JSON segment as an object, or `undefined` (RFC 7515 §7.1, RFC 7519 §7.2). @internal */
export function parseJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(decodeBase64urlText(segment));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
