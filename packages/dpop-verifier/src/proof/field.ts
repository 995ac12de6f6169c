/**
 * RFC 9449 §4.3 check 1: there is not more than one `DPoP` HTTP request header field. Two
 * fields, or one field holding a comma-joined list (RFC 9110 §5.3 lets intermediaries join
 * repeated fields), are refused: a proof never contains a comma.
 * @module
 */
import { refuse } from '../errors.ts';
import type { RequestLike } from '../request.ts';
import { headerValues } from '../request.ts';

/**
 * Check 1: the request's one `DPoP` header value, or `undefined` when there is none; throws
 * `multiple_proofs`. Shared by the resource server and the token endpoint. @internal
 */
export function dpopHeader(request: RequestLike): string | undefined {
  const values = headerValues(request, 'dpop');
  if (values.length === 0) return undefined;
  if (values.length > 1 || values[0]!.includes(',')) throw refuse('multiple_proofs');
  return values[0];
}
