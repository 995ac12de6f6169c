/**
 * What a token's claims grant: its scopes and its client, as OAuth and the MCP SDK name them.
 * @module
 */
import type { TokenClaims } from '../access-token.ts';

/**
 * The scopes of a token's claims: `scope` (RFC 9068 §2.2.3, RFC 7662 §2.2: space-separated),
 * else `scp` (a string or an array, as some authorization servers write it).
 */
export function tokenScopes(claims: TokenClaims): string[] {
  const value = claims.scope ?? claims.scp;
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string');
  return [];
}

/** The token's client: `client_id` (RFC 9068 §2.2), else `azp`, else `''`. @internal */
export function tokenClientId(claims: TokenClaims): string {
  const { client_id: client, azp } = claims;
  return typeof client === 'string' ? client : typeof azp === 'string' ? azp : '';
}

/** The token's `exp`, when it is a finite number. @internal */
export function tokenExpiry(claims: TokenClaims): number | undefined {
  const { exp } = claims;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
}
