/**
 * The refusals of access-token validation (RFC 6750 §3.1 `invalid_token`).
 * @module
 */
import type { TokenClaims } from '../access-token.ts';
import type { DPoPError } from '../errors.ts';
import { refuse } from '../errors.ts';

/** `invalid_token` / `token_invalid` with this description. @internal */
export function tokenError(description: string, cause?: unknown): DPoPError {
  return refuse('token_invalid', { description, ...(cause === undefined ? {} : { cause }) });
}

/** A validator's answer as claims: an object, else the token is invalid. @internal */
export function asClaims(value: unknown): TokenClaims {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw tokenError('The access token is invalid');
  return value as TokenClaims;
}
