/**
 * `@popkit/dpop-verifier/express`: DPoP and certificate-bound tokens for Express 4 and 5.
 * @packageDocumentation
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuthenticateNow, AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import { authenticateNowOf, compileDPoPAuth } from '../auth.ts';
import { PREFLIGHT_STATUS, abandon, asError, isOpen, isResult } from '../adapter-core.ts';
import { exposeHeaders, isCorsPreflight, isCorsRequest } from '../cors.ts';
import { DPoPError } from '../errors.ts';
import type { MaybePromise } from '../maybe-async.ts';
import { isPromiseLike } from '../maybe-async.ts';
import type { RequestLike } from '../request.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by popkit's `dpopAuth` on authenticated requests. */
      auth?: AuthResult;
    }
  }
}

/** Maps an Express (or plain node:http) request onto the core's request shape. */
export function toRequestLike(req: Request): RequestLike {
  return {
    method: req.method,
    url: req.originalUrl ?? req.url,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    protocol: (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http',
    socket: req.socket,
    body: (req as { body?: unknown }).body, // set when a body parser ran before this middleware
  };
}

/**
 * Express middleware: authenticates each request with {@link createDPoPAuth} (options are
 * validated now, once), sets `req.auth`, adds `DPoP-Nonce` when due, and answers failures
 * itself with the RFC 9449 / RFC 6750 status, `WWW-Authenticate` and `DPoP-Nonce` headers. For
 * browser clients it adds `DPoP-Nonce` and `WWW-Authenticate` to `Access-Control-Expose-Headers`
 * on responses to CORS requests (those with `Origin`).
 *
 * - CORS preflights: put your `cors()` middleware before this one; it answers them. A real
 *   preflight that reaches popkit all the same (the CORS middleware refused the origin, or has
 *   `preflightContinue`) is answered 204 with only the headers set before popkit, and never
 *   reaches your routes. Any other `OPTIONS` request is authenticated.
 * - Late answers: when the response was answered by something else (a request-timeout
 *   middleware, an error handler) or the client left while the request was being verified,
 *   popkit writes nothing and does not call `next()`: the handler does not run for an answer
 *   nobody receives.
 *
 * @example
 * ```ts
 * import { dpopAuth } from '@popkit/dpop-verifier/express';
 * app.use('/api', dpopAuth({ accessToken: { issuer, audience, jwks }, publicUrl, replay, nonces }));
 * app.get('/api/me', (req, res) => res.json({ sub: req.auth!.claims.sub }));
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export function dpopAuth(options: DPoPAuthOptions | DPoPAuth): RequestHandler {
  // A request verified without any asynchronous step (Node, the memory store, a known token)
  // continues at once, without a promise or a microtask.
  const authenticate: AuthenticateNow =
    'verify' in options && typeof options.verify === 'function'
      ? (authenticateNowOf(options) ?? ((request) => (options as DPoPAuth).verify(request)))
      : compileDPoPAuth(options as DPoPAuthOptions);
  return (req: Request, res: Response, next: NextFunction) => {
    // Answered before popkit ran (say, a timeout that fired while a body parser waited for the
    // body): nothing left to write, and the handler must not run.
    if (!isOpen(res)) return abandon(res);
    const headers = req.headers;
    if (
      req.method === 'OPTIONS' &&
      isCorsPreflight(
        req.method,
        headers.origin,
        headers['access-control-request-method'],
        headers.authorization,
        headers.dpop,
      )
    ) {
      return answerPreflight(res);
    }
    if (isCorsRequest(headers.origin)) {
      res.setHeader(
        'Access-Control-Expose-Headers',
        exposeHeaders(res.getHeader('Access-Control-Expose-Headers')),
      );
    }
    let result: MaybePromise<AuthResult>;
    try {
      result = authenticate(toRequestLike(req));
    } catch (error) {
      return refuse(res, next, error);
    }
    if (!isPromiseLike(result)) return accept(req, res, next, result);
    result.then(
      (accepted) => late(req, res, next, true, accepted),
      (error: unknown) => late(req, res, next, false, error),
    );
  };
}

/**
 * Continues after an asynchronous verification, unless the response closed meanwhile (answered
 * by a timeout or an error handler, or the client left): then the request is dropped silently.
 * It runs in a promise callback nobody else handles, so nothing may be thrown from it.
 */
function late(req: Request, res: Response, next: NextFunction, ok: boolean, value: unknown): void {
  if (!isOpen(res)) return abandon(res);
  try {
    if (!ok) refuse(res, next, value);
    else if (isResult(value)) accept(req, res, next, value as AuthResult);
    else next(new TypeError('The verifier resolved without a result')); // fail closed
  } catch {
    // Only a host whose `next` throws gets here (Express catches its handlers' errors).
    try {
      if (isOpen(res)) {
        res.statusCode = 500;
        res.end();
      }
    } catch {
      // nothing more can be done for this response
    }
  }
}

/** Sets `req.auth` and the result's headers (`DPoP-Nonce` when due), then continues. */
function accept(req: Request, res: Response, next: NextFunction, result: AuthResult): void {
  req.auth = result;
  const { headers } = result;
  try {
    for (const name in headers) res.setHeader(name, headers[name]!);
  } catch (error) {
    return next(error); // a header value Node refuses (from a custom DPoPAuth)
  }
  next();
}

/**
 * Answers a refusal with its status and headers; anything else goes to Express's error
 * handling, always as an `Error` (see {@link asError}).
 */
function refuse(res: Response, next: NextFunction, error: unknown): void {
  if (!(error instanceof DPoPError)) return next(asError(error));
  try {
    res.statusCode = error.status;
    const { headers } = error;
    for (const name in headers) res.setHeader(name, headers[name]!);
    res.end(error.body ?? undefined);
  } catch (thrown) {
    next(thrown); // a status or header Node refuses (from a custom DPoPAuth)
  }
}

/** Answers a real CORS preflight that no CORS middleware answered: 204, no grant of popkit's. */
function answerPreflight(res: Response): void {
  res.statusCode = PREFLIGHT_STATUS;
  res.setHeader('Content-Length', '0');
  res.end();
}

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
