/**
 * `@popkit/dpop-verifier/fastify`: DPoP and certificate-bound tokens for Fastify 5.
 * @packageDocumentation
 */
import type {
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  preHandlerAsyncHookHandler,
} from 'fastify';
import type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import { createDPoPAuth } from '../auth.ts';
import { exposeHeaders, isCorsRequest, isPreflight } from '../cors.ts';
import { DPoPError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by popkit's DPoP plugin on authenticated requests. */
    auth: AuthResult | null;
  }
}

function toAuth(options: DPoPAuthOptions | DPoPAuth): DPoPAuth {
  return 'verify' in options && typeof options.verify === 'function'
    ? options
    : createDPoPAuth(options as DPoPAuthOptions);
}

/**
 * A Fastify `preHandler` hook for chosen routes: `{ preHandler: dpopAuthHook(options) }`.
 * Options are validated when the hook is built.
 */
export function dpopAuthHook(options: DPoPAuthOptions | DPoPAuth): preHandlerAsyncHookHandler {
  const auth = toAuth(options);
  return async function dpopPreHandler(request: FastifyRequest, reply: FastifyReply) {
    if (isPreflight(request.method, request.headers['access-control-request-method'])) return;
    if (isCorsRequest(request.headers.origin)) {
      reply.header(
        'Access-Control-Expose-Headers',
        exposeHeaders(reply.getHeader('Access-Control-Expose-Headers') as string | undefined),
      );
    }
    try {
      const result = await auth.verify({
        method: request.method,
        url: request.url,
        headers: request.headers,
        rawHeaders: request.raw.rawHeaders,
        protocol: request.protocol,
        socket: request.raw.socket,
        body: request.body,
      });
      request.auth = result;
      for (const [name, value] of Object.entries(result.headers)) reply.header(name, value);
    } catch (error) {
      if (!(error instanceof DPoPError)) throw error;
      reply.code(error.status).headers(error.headers);
      return reply.send(error.body ?? '');
    }
  };
}

/**
 * Fastify plugin: authenticates every request of the scope it is registered in and exposes the
 * result as `request.auth`. Register it inside the encapsulated context of your API routes.
 *
 * @example
 * ```ts
 * import { dpopAuthPlugin } from '@popkit/dpop-verifier/fastify';
 * app.register(async (api) => {
 *   await api.register(dpopAuthPlugin, { accessToken: { issuer, audience, jwks }, publicUrl, replay, nonces });
 *   api.get('/me', async (request) => ({ sub: request.auth!.claims.sub }));
 * }, { prefix: '/api' });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export const dpopAuthPlugin: FastifyPluginAsync<DPoPAuthOptions | DPoPAuth> = async (
  fastify,
  options,
) => {
  const hook = dpopAuthHook(options);
  fastify.decorateRequest('auth', null);
  fastify.addHook('preHandler', hook);
};
// What fastify-plugin does: apply the hook to the scope that registers the plugin, not to a
// child scope of its own (otherwise the routes next to it would not be protected).
Object.assign(dpopAuthPlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@popkit/dpop-verifier',
  [Symbol.for('plugin-meta')]: { name: '@popkit/dpop-verifier', fastify: '5.x' },
});

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
