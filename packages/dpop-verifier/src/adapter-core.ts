/**
 * The one core of the Express, Fastify and Hono adapters: option coercion, the CORS prelude,
 * the refusal answer and the success path are written here once, and each adapter only maps its
 * framework's request and response onto an {@link Adapter} (a table of functions, built once).
 *
 * The order every adapter follows ({@link handle}): a response that is not popkit's any more is
 * dropped; a real CORS preflight is answered 204 without a grant; a CORS request gets popkit's
 * expose list; the request is authenticated, on the synchronous path when every step is
 * synchronous (Node, the memory store, a token validated before: no promise, no microtask);
 * then the refusal or the acceptance is written, unless the response closed meanwhile.
 *
 * Why the response is checked again after every asynchronous step: verification can finish late
 * (an introspection call, a JWKS fetch, a remote replay store). Meanwhile something else may
 * have answered (a request-timeout middleware, an error handler) or the client may have left.
 * From then on the response is not popkit's: writing headers on a finished Node response throws
 * `ERR_HTTP_HEADERS_SENT` (outside any handler, in a promise callback: the process exits), and
 * continuing would run the application's handler for an answer nobody receives, after the
 * client was told the request failed. So an adapter that finds its response closed drops the
 * request: it writes nothing and continues nowhere.
 *
 * @internal
 */
import type { Authenticate, AuthResult, DPoPAuth, DPoPAuthOptions } from './auth.ts';
import { authenticatorOf, compileDPoPAuth } from './auth.ts';
import { isCorsPreflight, isCorsRequest } from './cors.ts';
import { DPoPError } from './errors.ts';
import type { MaybePromise } from './maybe-async.ts';
import { isPromiseLike } from './maybe-async.ts';
import type { RequestLike } from './request.ts';

/**
 * What an adapter maps, for one framework. `C` is the framework's per-request context (for
 * example `{ req, res, next }`), `Out` what its middleware returns. Every member is called with
 * the context; none may throw but `accept`, `refuse` and `fail` (whose throws end in
 * {@link Adapter.broken}).
 * @internal
 */
export interface Adapter<C, Out> {
  /** The request method. */
  method(c: C): string;
  /** A request header by lower-case name: `undefined` or `null` when absent. */
  header(c: C, name: string): unknown;
  /** The request as the core reads it; a promise only when a body must be read first. */
  request(c: C): MaybePromise<RequestLike>;
  /** Whether the response is still popkit's to answer (see {@link isOpen}). */
  open(c: C): boolean;
  /** Ends popkit's part in a request whose response is not its own any more. */
  drop(c: C): Out;
  /** Answers a real CORS preflight: {@link PREFLIGHT_STATUS}, no grant of popkit's. */
  preflight(c: C): Out;
  /** Adds popkit's expose list to a CORS request's response before it is verified, if the framework sets headers ahead. */
  expose?(c: C): void;
  /** Answers a refusal with its status, headers and body (`cors`: the request has `Origin`). */
  refuse(c: C, error: DPoPError, cors: boolean): Out;
  /** Continues with an authenticated request: `req.auth`, the result's headers, the handler. */
  accept(c: C, result: AuthResult, cors: boolean): Out;
  /** Hands a failure that is not a refusal to the framework's error handling. */
  fail(c: C, error: Error): Out;
  /**
   * The last resort when answering after an asynchronous step threw (a host whose `next`
   * throws): it runs in a promise callback nobody else may handle, so it must not throw.
   */
  broken(c: C, thrown: unknown): Out;
}

/**
 * The per-request function of the options an adapter was given: a verifier built by
 * `createDPoPAuth` is run on its synchronous path, another `DPoPAuth` through its `verify`, and
 * options are compiled (and validated) now, once.
 * @internal
 */
export function authenticator(options: DPoPAuthOptions | DPoPAuth): Authenticate {
  if ('verify' in options && typeof options.verify === 'function') {
    const auth = options as DPoPAuth;
    return authenticatorOf(auth) ?? ((request) => auth.verify(request));
  }
  return compileDPoPAuth(options as DPoPAuthOptions);
}

/**
 * Authenticates one request through `adapter` (the order is in this module's summary). Returns
 * the adapter's answer at once when every step was synchronous, else a promise of it that never
 * rejects because of popkit (the adapter's own `broken` decides what a throw becomes).
 * @internal
 */
export function handle<C, Out>(
  adapter: Adapter<C, Out>,
  authenticate: Authenticate,
  c: C,
): Out | Promise<Out> {
  if (!adapter.open(c)) return adapter.drop(c);
  const method = adapter.method(c);
  if (
    method === 'OPTIONS' &&
    isCorsPreflight(
      method,
      adapter.header(c, 'origin'),
      adapter.header(c, 'access-control-request-method'),
      adapter.header(c, 'authorization'),
      adapter.header(c, 'dpop'),
    )
  ) {
    return adapter.preflight(c);
  }
  const cors = isCorsRequest(adapter.header(c, 'origin'));
  if (cors) adapter.expose?.(c);
  let request: MaybePromise<RequestLike>;
  try {
    request = adapter.request(c);
  } catch (error) {
    return settled(adapter, c, false, error, cors);
  }
  if (isPromiseLike(request)) {
    return request.then(
      (read) => (adapter.open(c) ? verify(adapter, authenticate, c, read, cors) : adapter.drop(c)),
      (error: unknown) => late(adapter, c, false, error, cors),
    );
  }
  return verify(adapter, authenticate, c, request, cors);
}

function verify<C, Out>(
  adapter: Adapter<C, Out>,
  authenticate: Authenticate,
  c: C,
  request: RequestLike,
  cors: boolean,
): Out | Promise<Out> {
  let result: MaybePromise<AuthResult>;
  try {
    result = authenticate(request);
  } catch (error) {
    return settled(adapter, c, false, error, cors);
  }
  if (!isPromiseLike(result)) return settled(adapter, c, true, result, cors);
  return result.then(
    (accepted) => late(adapter, c, true, accepted, cors),
    (error: unknown) => late(adapter, c, false, error, cors),
  );
}

/**
 * Answers after an asynchronous step, unless the response closed meanwhile (answered by a
 * timeout or an error handler, or the client left): then the request is dropped silently.
 */
function late<C, Out>(
  adapter: Adapter<C, Out>,
  c: C,
  ok: boolean,
  value: unknown,
  cors: boolean,
): Out {
  try {
    if (!adapter.open(c)) return adapter.drop(c);
    return settled(adapter, c, ok, value, cors);
  } catch (thrown) {
    return adapter.broken(c, thrown);
  }
}

/**
 * The answer to a settled verification: a refusal's status and headers; any other failure to
 * the framework's error handling, as an `Error` (see {@link asError}); an acceptance only with
 * a result (a custom verifier that resolves with nothing has authenticated no one: fail closed).
 */
function settled<C, Out>(
  adapter: Adapter<C, Out>,
  c: C,
  ok: boolean,
  value: unknown,
  cors: boolean,
): Out {
  if (!ok) {
    return value instanceof DPoPError
      ? adapter.refuse(c, value, cors)
      : adapter.fail(c, asError(value));
  }
  if (!isResult(value))
    return adapter.fail(c, new TypeError('The verifier resolved without a result'));
  return adapter.accept(c, value as AuthResult, cors);
}

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
