/**
 * `@popkit/dpop-verifier/express`: DPoP and certificate-bound tokens for Express 4 and 5.
 * @packageDocumentation
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import type { Adapter } from '../adapter-core.ts';
import { authenticator, handle } from '../adapter-core.ts';
import type { ExpressCall } from './node-adapter.ts';
import { EXPRESS_BASE } from './node-adapter.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by popkit's `dpopAuth` on authenticated requests. */
      auth?: AuthResult;
    }
  }
}

export { toRequestLike } from './node-adapter.ts';

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
  const authenticate = authenticator(options);
  return (req: Request, res: Response, next: NextFunction) => {
    handle(EXPRESS, authenticate, { req, res, next });
  };
}

/** Express (and plain `node:http` + `next`) mapped onto the adapter core. */
const EXPRESS: Adapter<ExpressCall, void> = {
  ...EXPRESS_BASE,
  refuse({ res, next }, error) {
    try {
      res.statusCode = error.status;
      const { headers } = error;
      for (const name in headers) res.setHeader(name, headers[name]!);
      res.end(error.body ?? undefined);
    } catch (thrown) {
      next(thrown); // a status or header Node refuses (from a custom DPoPAuth)
    }
  },
  accept({ req, res, next }, result) {
    req.auth = result;
    const { headers } = result;
    try {
      for (const name in headers) res.setHeader(name, headers[name]!);
    } catch (error) {
      return next(error); // a header value Node refuses (from a custom DPoPAuth)
    }
    next();
  },
};

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
