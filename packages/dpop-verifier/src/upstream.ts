/**
 * The calls to the authorization server that token validation makes (a JWKS fetch, an RFC 7662
 * introspection call), reported to `onUpstream` for metrics: what the call was for, how it
 * ended and how long it took. Never a token, URL, key or claim.
 * @module
 */

/**
 * One call to the authorization server, once it ended.
 *
 * - `jwks`: a fetch of the issuer's JWK Set (RFC 9068 tokens with `jwks` as a URL); `trigger`
 *   says why: the first keys, keys too old to use (`expired`), a background `refresh`, or a
 *   token with an `unknown_key` (the issuer may have rotated).
 * - `introspection`: an RFC 7662 call; `active` (the token is usable here), `inactive` (the
 *   server answered, and the token is not: inactive, expired, another audience or issuer) or
 *   `error` (no usable answer: network, timeout, status, body).
 */
export type UpstreamEvent =
  | {
      kind: 'jwks';
      result: 'ok' | 'error';
      trigger: 'initial' | 'expired' | 'refresh' | 'unknown_key';
      durationMs: number;
    }
  | {
      kind: 'introspection';
      result: 'active' | 'inactive' | 'error';
      durationMs: number;
    };

/** Receives {@link UpstreamEvent}s; what it throws is ignored. */
export type UpstreamListener = (event: UpstreamEvent) => void;

/** Calls `listener` without letting it throw into validation. @internal */
export function emitUpstream(listener: UpstreamListener, event: UpstreamEvent): void {
  try {
    listener(event);
  } catch {
    // telemetry must never change a verdict
  }
}
