/**
 * `@popkit/dpop-verifier/hono`: DPoP for Hono on any Web-standard runtime (Node, Workers,
 * Deno, Bun).
 * @packageDocumentation
 */
import type { HonoRequest, MiddlewareHandler } from 'hono';
import type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import { createDPoPAuth } from '../auth.ts';
import { exposeHeaders, isCorsRequest, isPreflight } from '../cors.ts';
import { DPoPError } from '../errors.ts';
import type { RequestLike } from '../request.ts';

/** Hono environment with the `auth` variable this middleware sets. */
export interface DPoPAuthEnv {
  Variables: { auth: AuthResult };
}

/** Form bodies up to this size are inspected for a misplaced `access_token`. */
const MAX_FORM_BYTES = 65_536;

/**
 * The request with its parsed form body, when it has a small urlencoded one. The text is read
 * through Hono's body cache, so handlers can still read the body afterwards.
 */
async function withFormBody(req: HonoRequest): Promise<RequestLike> {
  const raw = req.raw;
  const type = raw.headers.get('content-type') ?? '';
  const length = Number(raw.headers.get('content-length') ?? NaN);
  if (
    raw.body === null ||
    !/^application\/x-www-form-urlencoded\b/i.test(type) ||
    !(length <= MAX_FORM_BYTES)
  ) {
    return raw;
  }
  const body = Object.fromEntries(new URLSearchParams(await req.text()));
  return { method: raw.method, url: raw.url, headers: raw.headers, body };
}

/**
 * Hono middleware: authenticates `c.req.raw` (a Web `Request`) and sets `c.get('auth')`.
 * Failures are answered with the ready status and headers.
 *
 * @example
 * ```ts
 * import { dpopAuth } from '@popkit/dpop-verifier/hono';
 * const app = new Hono<DPoPAuthEnv>();
 * app.use('/api/*', dpopAuth({ accessToken: { issuer, audience, jwks }, publicUrl, replay, nonces }));
 * app.get('/api/me', (c) => c.json({ sub: c.get('auth').claims.sub }));
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export function dpopAuth(options: DPoPAuthOptions | DPoPAuth): MiddlewareHandler<DPoPAuthEnv> {
  const auth =
    'verify' in options && typeof options.verify === 'function'
      ? options
      : createDPoPAuth(options as DPoPAuthOptions);
  return async (c, next) => {
    if (isPreflight(c.req.method, c.req.header('access-control-request-method'))) return next();
    const cors = isCorsRequest(c.req.header('origin'));
    let result: AuthResult;
    try {
      result = await auth.verify(await withFormBody(c.req));
    } catch (error) {
      if (!(error instanceof DPoPError)) throw error;
      const response = error.toResponse();
      if (cors) response.headers.set('Access-Control-Expose-Headers', exposeHeaders(null));
      return response;
    }
    c.set('auth', result);
    await next();
    for (const [name, value] of Object.entries(result.headers)) c.header(name, value);
    if (cors) {
      c.header(
        'Access-Control-Expose-Headers',
        exposeHeaders(c.res.headers.get('Access-Control-Expose-Headers')),
      );
    }
  };
}

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
