/**
 * `@popkit/dpop-verifier/fastify`: DPoP and certificate-bound tokens for Fastify 5.
 * @packageDocumentation
 */
import type {
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  preHandlerHookHandler,
} from 'fastify';
import type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import type { Adapter } from '../adapter-core.ts';
import { PREFLIGHT_STATUS, abandon, authenticator, handle, isOpen } from '../adapter-core.ts';
import { exposeHeaders } from '../cors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by popkit's DPoP plugin on authenticated requests. */
    auth: AuthResult | null;
  }
}

/**
 * A Fastify `preHandler` hook for chosen routes: `{ preHandler: dpopAuthHook(options) }`.
 * Options are validated when the hook is built. It is a callback hook, so a request verified
 * without any asynchronous step (Node, the memory store, a known token) continues to its handler
 * at once, without a promise or a microtask.
 *
 * A real CORS preflight that reaches it (`@fastify/cors` answers them in its `onRequest` hook,
 * unless its origin check said no or `preflightContinue` is set) is answered 204 with only the
 * headers set before it; any other `OPTIONS` request is authenticated. When the reply was sent
 * by something else while the request was being verified (`handlerTimeout`, another hook) or
 * the client left, the hook writes nothing and the handler does not run.
 */
export function dpopAuthHook(options: DPoPAuthOptions | DPoPAuth): preHandlerHookHandler {
  const authenticate = authenticator(options);
  return function dpopPreHandler(request, reply, done) {
    handle(FASTIFY, authenticate, { request, reply, done });
  };
}

/** One Fastify request: what the adapter core calls {@link Adapter}'s context. */
interface Call {
  request: FastifyRequest;
  reply: FastifyReply;
  done: HookHandlerDoneFunction;
}

/** Fastify 5 mapped onto the adapter core. */
const FASTIFY: Adapter<Call, void> = {
  method: ({ request }) => request.method,
  header: ({ request }, name) => request.headers[name],
  request: ({ request }) => ({
    method: request.method,
    url: request.url,
    headers: request.headers,
    rawHeaders: request.raw.rawHeaders,
    protocol: request.protocol,
    socket: request.raw.socket,
    body: request.body,
  }),
  open: ({ reply }) => isOpen(reply.raw),
  drop: ({ reply }) => stop(reply),
  preflight({ reply }) {
    reply.code(PREFLIGHT_STATUS).header('content-length', '0').send();
  },
  expose({ reply }) {
    reply.header(
      'Access-Control-Expose-Headers',
      exposeHeaders(reply.getHeader('Access-Control-Expose-Headers')),
    );
  },
  refuse({ reply }, error) {
    reply.code(error.status).headers(error.headers);
    reply.send(error.body ?? '');
  },
  accept({ request, reply, done }, result) {
    request.auth = result;
    const { headers } = result;
    for (const name in headers) reply.header(name, headers[name]);
    done();
  },
  fail: ({ done }, error) => done(error),
  broken({ reply }) {
    // Fastify's own `send`/`done` threw after an asynchronous verification: end the response.
    try {
      if (isOpen(reply.raw)) {
        reply.raw.statusCode = 500;
        reply.raw.end();
      }
    } catch {
      // nothing more can be done for this response
    }
  },
};

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
  const hook = dpopAuthHook(ownOptions(options));
  fastify.decorateRequest('auth', null);
  fastify.addHook('preHandler', hook);
};
/** Options `register` passes to every plugin beside its own (Fastify's, not popkit's). */
const REGISTER_OPTIONS = ['prefix', 'logLevel', 'logSerializers'] as const;

/** The plugin's options without Fastify's own `register` options (see {@link REGISTER_OPTIONS}). */
function ownOptions(options: DPoPAuthOptions | DPoPAuth): DPoPAuthOptions | DPoPAuth {
  if (!REGISTER_OPTIONS.some((name) => Object.hasOwn(options, name))) return options;
  const own: Record<string, unknown> = { ...options };
  for (const name of REGISTER_OPTIONS) delete own[name];
  return own as unknown as DPoPAuthOptions | DPoPAuth;
}

// What fastify-plugin does: apply the hook to the scope that registers the plugin, not to a
// child scope of its own (otherwise the routes next to it would not be protected).
Object.assign(dpopAuthPlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@popkit/dpop-verifier',
  [Symbol.for('plugin-meta')]: { name: '@popkit/dpop-verifier', fastify: '5.x' },
});

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
