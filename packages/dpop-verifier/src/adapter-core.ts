/**
 * What every adapter checks before it writes an answer or lets a request continue to the
 * application: whether the response is still its own.
 *
 * Verification can finish late (an introspection call, a JWKS fetch, a remote replay store).
 * Meanwhile something else may have answered (a request-timeout middleware, an error handler)
 * or the client may have left. From then on the response is not popkit's: writing headers on a
 * finished Node response throws `ERR_HTTP_HEADERS_SENT` (outside any handler, in a promise
 * callback: the process exits), and continuing would run the application's handler for an
 * answer nobody receives, after the client was told the request failed. So an adapter that
 * finds its response closed drops the request: it writes nothing and continues nowhere.
 *
 * @internal
 */

/**
 * The members of a Node `ServerResponse` the check reads (a structural type: this module is
 * shared with the Web-standard adapter, which has no Node types).
 * @internal
 */
export interface NodeResponseState {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
}

/**
 * Whether a Node response can still be answered by the adapter: no one has sent (or started to
 * send) it and the client is still connected. `res.destroyed`, not the request's `close` or
 * `destroyed`: a request reports those as soon as its body has been read, the response only
 * when the connection is gone.
 * @internal
 */
export function isOpen(res: NodeResponseState): boolean {
  return !res.headersSent && !res.writableEnded && !res.destroyed;
}

/**
 * Drops a Node response that is not popkit's any more: nothing is written to it. One whose
 * headers something else sent without finishing it (and handed the request on) is destroyed:
 * it can carry no refusal, and would otherwise keep the client waiting forever (Fastify's
 * `handlerTimeout` does the same). A finished response, or one whose client left, is left as
 * it is.
 * @internal
 */
export function abandon(res: NodeResponseState & { destroy(): unknown }): void {
  if (res.headersSent && !res.writableEnded && !res.destroyed) res.destroy();
}

/**
 * The status of popkit's own answer to a real CORS preflight that no CORS middleware answered:
 * 204 without any `Access-Control-Allow-*` grant of its own (the headers a CORS layer set before
 * it are kept), so a browser grants exactly what that layer granted, and nothing when there is
 * none: it fails closed. The application's handler never sees a preflight.
 * @internal
 */
export const PREFLIGHT_STATUS = 204;

/**
 * A verifier's failure as an `Error`, for the framework's error handling. A custom `DPoPAuth`
 * may reject with anything, and values that are not errors can read as "no error": Express's
 * `next(undefined)`, `next(null)`, `next(0)` continue and `next('route')` skips to the next
 * route, unauthenticated. The value itself is not kept (it could be a token).
 * @internal
 */
export function asError(value: unknown): Error {
  return value instanceof Error
    ? value
    : new Error('The request could not be verified (the verifier failed with a non-Error value)');
}

/**
 * Whether a custom verifier's outcome can be an accepted request's result: an object (a
 * verifier that resolves with nothing has not authenticated anyone).
 * @internal
 */
export function isResult(value: unknown): boolean {
  return value !== null && typeof value === 'object';
}
