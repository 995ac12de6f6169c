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
import { PREFLIGHT_STATUS, abandon, asError, isOpen, isResult } from '../adapter-core.ts';
import { exposeHeaders, isCorsPreflight, isCorsRequest } from '../cors.ts';
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
 *
 * A real CORS preflight that reaches it (`@fastify/cors` answers them in its `onRequest` hook,
 * unless its origin check said no or `preflightContinue` is set) is answered 204 with only the
 * headers set before it; any other `OPTIONS` request is authenticated. When the reply was sent
 * by something else while the request was being verified (`handlerTimeout`, another hook) or
 * the client left, the hook writes nothing and the handler does not run.
 */
export function dpopAuthHook(options: DPoPAuthOptions | DPoPAuth): preHandlerAsyncHookHandler {
  const auth = toAuth(options);
  return async function dpopPreHandler(request: FastifyRequest, reply: FastifyReply) {
    if (!isOpen(reply.raw)) return stop(reply);
    const headers = request.headers;
    if (
      request.method === 'OPTIONS' &&
      isCorsPreflight(
        request.method,
        headers.origin,
        headers['access-control-request-method'],
        headers.authorization,
        headers.dpop,
      )
    ) {
      return reply.code(PREFLIGHT_STATUS).header('content-length', '0').send();
    }
    if (isCorsRequest(headers.origin)) {
      reply.header(
        'Access-Control-Expose-Headers',
        exposeHeaders(reply.getHeader('Access-Control-Expose-Headers')),
      );
    }
    let result: AuthResult;
    try {
      result = await auth.verify({
        method: request.method,
        url: request.url,
        headers,
        rawHeaders: request.raw.rawHeaders,
        protocol: request.protocol,
        socket: request.raw.socket,
        body: request.body,
      });
    } catch (error) {
      if (!isOpen(reply.raw)) return stop(reply);
      if (!(error instanceof DPoPError)) throw asError(error);
      reply.code(error.status).headers(error.headers);
      return reply.send(error.body ?? '');
    }
    if (!isOpen(reply.raw)) return stop(reply);
    if (!isResult(result)) throw new TypeError('The verifier resolved without a result');
    request.auth = result;
    const { headers: extra } = result;
    for (const name in extra) reply.header(name, extra[name]);
  };
}

/**
 * Ends popkit's part in a request whose response is no longer its own (see {@link abandon}). A
 * sent reply (answered by `handlerTimeout`, say) already stops Fastify's lifecycle; an unsent
 * one whose client left or whose headers someone else wrote is taken over (`hijack`), so that
 * neither the handler runs nor Fastify writes to it.
 */
function stop(reply: FastifyReply): void {
  abandon(reply.raw);
  if (!reply.sent) reply.hijack();
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
