/**
 * RFC 9449 §4.3 check 12: a proof presented with an access token carries `ath`, the hash of
 * that token (§4.2), and is signed by the key the token is bound to (`cnf.jkt`, §6.1); at a
 * token endpoint, the key of `dpop_jkt` (§10) or of a bound refresh token (§5). Both compared
 * in constant time.
 * @module
 */
import { refuse } from '../errors.ts';
import { timingSafeEqual } from '../timing-safe.ts';
import { accessTokenSha256 } from '../token-hash.ts';

/**
 * Check 12, the key: the proof key's thumbprint against the bound one, in constant time;
 * throws `invalid_token` / `jkt_mismatch`. Checked before the signature: a proof by another
 * key is refused cheaply. @internal
 */
export function checkKeyBinding(proofJkt: string, boundJkt: unknown): void {
  if (typeof boundJkt !== 'string' || !timingSafeEqual(proofJkt, boundJkt))
    throw refuse('jkt_mismatch');
}

/**
 * Check 12, the token: `ath` against the access token's hash (`tokenHash` when the caller
 * computed it already), compared as strings in constant time. Synchronous when the hash is
 * (node:crypto). @internal
 */
export function checkAth(
  ath: unknown,
  accessToken: string,
  tokenHash: string | Promise<string> | undefined,
): void | Promise<void> {
  if (typeof ath !== 'string') throw refuse('ath_missing');
  const hash = tokenHash ?? accessTokenSha256(accessToken);
  if (typeof hash === 'string') return athMatches(ath, hash);
  return hash.then((h) => athMatches(ath, h));
}

function athMatches(ath: string, tokenHash: string): void {
  if (!timingSafeEqual(ath, tokenHash)) throw refuse('ath_mismatch');
}
