/**
 * `@popkit/dpop-verifier/hono`: DPoP for Hono on any Web-standard runtime (Node, Workers,
 * Deno, Bun).
 * @packageDocumentation
 */
import type { MiddlewareHandler } from 'hono';
import type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import { createDPoPAuth } from '../auth.ts';
import { DPoPError } from '../errors.ts';

/** Hono environment with the `auth` variable this middleware sets. */
export interface DPoPAuthEnv {
  Variables: { auth: AuthResult };
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
    let result: AuthResult;
    try {
      result = await auth.verify(c.req.raw);
    } catch (error) {
      if (error instanceof DPoPError) return error.toResponse();
      throw error;
    }
    c.set('auth', result);
    await next();
    for (const [name, value] of Object.entries(result.headers)) c.header(name, value);
  };
}

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
