/**
 * A request's credentials, checked cheaply before the token is validated (a signature, or an
 * introspection call): one `Authorization` header with the `DPoP` or `Bearer` scheme and a
 * `token68` (RFC 6750 §2.1, RFC 9449 §7.1), the token nowhere else (RFC 6750 §2, RFC 9449 §7),
 * and for DPoP exactly one `DPoP` header (RFC 9449 §4.3 check 1).
 * @module
 */
import { accessTokenSha256 } from '../token-hash.ts';
import { refuse } from '../errors.ts';
import { dpopHeader } from '../proof/field.ts';
import type { RequestLike } from '../request.ts';
import { headerValues } from '../request.ts';
import type { AuthRun } from './types.ts';

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Reads the credentials into `run` (its scheme first, so a refusal names it), or throws the
 * refusal. Synchronous, apart from the caller's `publicUrl` and `requireNonce` hooks. @internal
 */
export function readCredentials(run: AuthRun): void {
  const { policy, request } = run;
  if (request === null || typeof request !== 'object' || typeof request.method !== 'string')
    throw refuse('invalid_url', { description: 'The request is malformed' });
  const authorization = headerValues(request, 'authorization');
  if (authorization.length === 0) {
    // A token sent only in the query or a form body is a malformed request (RFC 6750 §2,
    // RFC 9449 §7), not a missing credential: answered `invalid_request` here as in the adapters.
    tokenElsewhere(request, policy.bearerScheme ? 'Bearer' : 'DPoP');
    throw refuse('missing_authorization');
  }
  if (authorization.length > 1 || authorization[0]!.includes(','))
    throw refuse('multiple_authorization');
  const value = authorization[0]!;
  const space = value.indexOf(' ');
  const schemeName = space > 0 ? value.slice(0, space).toLowerCase() : value.toLowerCase();
  const token = space > 0 ? value.slice(space + 1).trim() : '';
  const scheme = schemeName === 'dpop' ? 'DPoP' : schemeName === 'bearer' ? 'Bearer' : undefined;
  if (scheme === undefined) throw refuse('missing_authorization');
  run.scheme = scheme;
  if (token.length === 0 || token.length > policy.maxTokenLength || !TOKEN68.test(token))
    throw refuse('malformed_authorization');
  if (scheme === 'Bearer' && !policy.bearerScheme) throw refuse('bearer_not_allowed');
  // RFC 9449 §4.3 check 1
  const proof = dpopHeader(request);
  // One way to send the token (RFC 6750 §2): never also in the query or a form body.
  tokenElsewhere(request, scheme);
  if (scheme === 'DPoP' && proof === undefined) throw refuse('missing_proof');
  run.token = token;
  // hashed once: the validated-token cache key and the proof's `ath`
  run.tokenHash = accessTokenSha256(token);
  run.proof = proof;
  if (scheme === 'DPoP') {
    run.url = policy.resolveUrl(request);
    if (policy.requireNonce !== undefined) run.requireNonce = policy.requireNonce(request);
  }
}

/**
 * Refuses an access token also sent in the query string or a parsed form body (RFC 6750 §2:
 * one method only; RFC 9449 §7: DPoP tokens only in the `Authorization` header). @internal
 */
function tokenElsewhere(request: RequestLike, scheme: 'DPoP' | 'Bearer'): void {
  const description = `The access token must only be sent in the Authorization header (${scheme})`;
  const url = request.url;
  const q = typeof url === 'string' ? url.indexOf('?') : -1;
  if (q >= 0 && /(?:^|&)access_token=/.test(url.slice(q + 1).split('#')[0]!))
    throw refuse('token_in_query', { description });
  const body = request.body;
  const type = body === undefined ? [] : headerValues(request, 'content-type');
  if (
    type.length === 1 &&
    /^application\/x-www-form-urlencoded\b/i.test(type[0]!) &&
    body !== null &&
    typeof body === 'object' &&
    !ArrayBuffer.isView(body) &&
    typeof (body as { getReader?: unknown }).getReader !== 'function' &&
    typeof (body as { pipe?: unknown }).pipe !== 'function' &&
    Object.prototype.hasOwnProperty.call(body, 'access_token')
  ) {
    throw refuse('token_in_body', { description });
  }
}
