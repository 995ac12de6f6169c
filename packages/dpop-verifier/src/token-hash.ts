import { sha256Base64url } from '#crypto';
import { timingSafeEqual } from './timing-safe.ts';

// The last token hashed and its hash: a request's token is hashed for the validated-token cache
// and again for `ath`, and a client sends the same token many times. @internal
let lastToken = '';
let lastHash: string | Promise<string> = '';

/** base64url SHA-256 of an access token (RFC 9449 §4.2 `ath`), memoised for the last token. @internal */
export function accessTokenSha256(token: string): string | Promise<string> {
  // The token is a secret and the caller's input: compared in constant time, never with `!==`,
  // whose early exit would time how much of it matches the last client's token.
  if (!timingSafeEqual(token, lastToken)) {
    lastHash = sha256Base64url(token);
    lastToken = token;
  }
  return lastHash;
}
