import { sha256Base64url } from '#crypto';

/** base64url SHA-256 of an access token (RFC 9449 §4.2 `ath`). @internal */
export function accessTokenSha256(token: string): string | Promise<string> {
  return sha256Base64url(token);
}
