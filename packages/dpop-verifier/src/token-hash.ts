import { sha256Base64url } from '#crypto';

/**
 * The access token's hash, base64url SHA-256 (RFC 9449 §4.2 `ath`): computed once per request
 * by `createDPoPAuth` and handed to the validated-token cache and the `ath` check under this key
 * (a symbol, so no caller can supply it by accident). Nothing keeps a token between requests.
 * @internal
 */
export const TOKEN_HASH: unique symbol = Symbol('popkit.tokenHash');

/** base64url SHA-256 of an access token (RFC 9449 §4.2 `ath`). @internal */
export function accessTokenSha256(token: string): string | Promise<string> {
  return sha256Base64url(token);
}
