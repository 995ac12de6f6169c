/**
 * `@popkit/dpop-verifier/express`: DPoP and certificate-bound tokens for Express 4 and 5.
 * @packageDocumentation
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuthenticateNow, AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import { authenticateNowOf, compileDPoPAuth } from '../auth.ts';
import { exposeHeaders, isCorsRequest, isPreflight } from '../cors.ts';
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
 * on responses to CORS requests (those with `Origin`) and lets CORS preflights through (put your
 * `cors()` middleware before it).
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
    // CORS preflights carry no credentials: let them through to the CORS middleware.
    if (isPreflight(req.method, req.headers['access-control-request-method'])) return next();
    if (isCorsRequest(req.headers.origin)) {
      res.setHeader(
        'Access-Control-Expose-Headers',
        exposeHeaders(res.getHeader('Access-Control-Expose-Headers') as string | undefined),
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
      (accepted) => accept(req, res, next, accepted),
      (error: unknown) => refuse(res, next, error),
    );
  };
}

/** Sets `req.auth` and the result's headers (`DPoP-Nonce` when due), then continues. */
function accept(req: Request, res: Response, next: NextFunction, result: AuthResult): void {
  req.auth = result;
  const { headers } = result;
  for (const name in headers) res.setHeader(name, headers[name]!);
  next();
}

/** Answers a refusal with its status and headers; anything else goes to Express's error handling. */
function refuse(res: Response, next: NextFunction, error: unknown): void {
  if (!(error instanceof DPoPError)) return next(error);
  res.status(error.status);
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.end(error.body ?? undefined);
}

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
