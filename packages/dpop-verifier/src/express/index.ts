/**
 * `@popkit/dpop-verifier/express`: DPoP and certificate-bound tokens for Express 4 and 5.
 * @packageDocumentation
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import { createDPoPAuth } from '../auth.ts';
import { exposeHeaders, isPreflight } from '../cors.ts';
import { DPoPError } from '../errors.ts';
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
 * and lets CORS preflights through (put your `cors()` middleware before it).
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
  const auth =
    'verify' in options && typeof options.verify === 'function'
      ? options
      : createDPoPAuth(options as DPoPAuthOptions);
  return (req: Request, res: Response, next: NextFunction) => {
    // CORS preflights carry no credentials: let them through to the CORS middleware.
    if (isPreflight(req.method, req.headers['access-control-request-method'])) return next();
    res.setHeader(
      'Access-Control-Expose-Headers',
      exposeHeaders(res.getHeader('Access-Control-Expose-Headers') as string | undefined),
    );
    auth.verify(toRequestLike(req)).then(
      (result) => {
        req.auth = result;
        for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
        next();
      },
      (error: unknown) => {
        if (!(error instanceof DPoPError)) return next(error);
        res.status(error.status);
        for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
        res.end(error.body ?? undefined);
      },
    );
  };
}

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
