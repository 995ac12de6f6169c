/**
 * `@popkit/dpop-verifier/hono`: DPoP for Hono on any Web-standard runtime (Node, Workers,
 * Deno, Bun).
 * @packageDocumentation
 */
import type { Context, HonoRequest, MiddlewareHandler, Next } from 'hono';
import type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
import type { Adapter } from '../adapter-core.ts';
import { PREFLIGHT_STATUS, authenticator, handle } from '../adapter-core.ts';
import { exposeHeaders } from '../cors.ts';
import type { MaybePromise } from '../maybe-async.ts';
import { isPromiseLike } from '../maybe-async.ts';
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
function withFormBody(req: HonoRequest): MaybePromise<RequestLike> {
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
  return req.text().then(
    (text) => {
      const body = Object.fromEntries(new URLSearchParams(text));
      return { method: raw.method, url: raw.url, headers: raw.headers, body };
    },
    // The body could not be read (the client left while sending it, most likely): nothing
    // downstream can read it either, so the request is verified without it.
    () => raw,
  );
}

/**
 * The peer of the connection, as the runtime tells it (for the fair shares of introspection
 * calls, `peerSource`): `@hono/node-server`'s socket, Bun's `requestIP`, Deno's `remoteAddr`,
 * or Cloudflare's `CF-Connecting-IP` (set by Cloudflare itself on Workers, where `cf` is
 * present). Undefined elsewhere (then all requests share one source).
 */
function peerOf(c: Context): { remoteAddress?: string } | undefined {
  const env = c.env as
    | {
        incoming?: { socket?: { remoteAddress?: string } };
        requestIP?: (request: Request) => { address?: string } | null;
        remoteAddr?: { hostname?: string };
      }
    | undefined;
  try {
    if (env?.incoming?.socket) return env.incoming.socket;
    if (typeof env?.requestIP === 'function') {
      const address = env.requestIP(c.req.raw)?.address;
      return address === undefined ? undefined : { remoteAddress: address };
    }
    if (typeof env?.remoteAddr?.hostname === 'string')
      return { remoteAddress: env.remoteAddr.hostname };
    if ((c.req.raw as { cf?: unknown }).cf !== undefined) {
      const address = c.req.raw.headers.get('cf-connecting-ip');
      return address === null ? undefined : { remoteAddress: address };
    }
  } catch {
    // a runtime object that throws: no peer, one shared source
  }
  return undefined;
}

/** The request with the connection's peer, when the runtime tells it. */
function withPeer(request: RequestLike, c: Context): RequestLike {
  const socket = peerOf(c);
  if (socket === undefined) return request;
  const { method, url, headers, body } = request;
  return body === undefined
    ? { method, url, headers, socket }
    : { method, url, headers, body, socket };
}

/**
 * Status of the answer to a request whose client left during its verification. Nobody reads
 * it; a logging or metrics middleware in front sees "client closed request" (nginx's 499), and
 * Hono gets the response every middleware must return.
 */
const CLIENT_CLOSED = 499;

/**
 * Whether the request is no longer popkit's to answer: something else answered (`hono/timeout`
 * threw and the error handler's response was sent: `c.finalized`), or the client left (the
 * request's `signal`, which `@hono/node-server` and the Web runtimes abort when it does).
 */
function closed(c: Context): boolean {
  return c.finalized || c.req.raw.signal?.aborted === true;
}

/**
 * Drops a request that is not popkit's any more: an answered one is left alone (returning
 * nothing keeps the response that was sent); for one whose client left, a bodiless 499.
 */
function drop(c: Context): Response | undefined {
  return c.finalized ? undefined : new Response(null, { status: CLIENT_CLOSED });
}

/**
 * Hono middleware: authenticates `c.req.raw` (a Web `Request`) and sets `c.get('auth')`.
 * Failures are answered with the ready status and headers.
 *
 * - CORS preflights: put `hono/cors` before it (it answers every `OPTIONS` request it sees). A
 *   real preflight that reaches popkit all the same is answered 204 with only the headers set
 *   before it; any other `OPTIONS` request is authenticated.
 * - Late answers: when something answered while the request was being verified (`hono/timeout`)
 *   or the client left, popkit writes nothing and does not call `next()`: the handler does not
 *   run for an answer nobody receives.
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
  const authenticate = authenticator(options);
  // A request verified without any asynchronous step (Bun or Node with node:crypto, the memory
  // store, a known token) reaches `next()` within this call, without a microtask.
  return ((c, next) => handle(HONO, authenticate, { c, next })) as MiddlewareHandler<DPoPAuthEnv>;
}

/** One Hono request: what the adapter core calls {@link Adapter}'s context. */
interface Call {
  c: Context<DPoPAuthEnv>;
  next: Next;
}

/** What the middleware returns to Hono: a response, or nothing to keep the one it has. */
type Answer = Response | undefined | Promise<Response | undefined>;

/** Hono mapped onto the adapter core. */
const HONO: Adapter<Call, Answer> = {
  method: ({ c }) => c.req.method,
  header: ({ c }, name) => c.req.header(name),
  request({ c }) {
    const request = withFormBody(c.req);
    return isPromiseLike(request)
      ? request.then((read) => withPeer(read, c))
      : withPeer(request, c);
  },
  open: ({ c }) => !closed(c),
  drop: ({ c }) => drop(c),
  preflight: ({ c }) => c.body(null, PREFLIGHT_STATUS),
  refuse({ c }, error, cors) {
    const response = error.toResponse();
    if (cors) {
      // Merged with what `hono/cors` already set on `c.res`: Hono copies `c.res`'s headers over
      // the Response returned here, so the merged list goes on both.
      const expose = exposeHeaders(c.res.headers.get('Access-Control-Expose-Headers'));
      response.headers.set('Access-Control-Expose-Headers', expose);
      try {
        c.res.headers.set('Access-Control-Expose-Headers', expose);
      } catch {
        // an immutable c.res (set by an earlier middleware): the returned Response has the list
      }
    }
    return response;
  },
  accept: ({ c, next }, result, cors) => {
    c.set('auth', result);
    return next().then(() => {
      try {
        for (const [name, value] of Object.entries(result.headers)) c.header(name, value);
        if (cors) {
          c.header(
            'Access-Control-Expose-Headers',
            exposeHeaders(c.res.headers.get('Access-Control-Expose-Headers')),
          );
        }
      } catch {
        // The response is already on its way (a timeout answered while the handler ran, and
        // its body is being sent): it can no longer take headers, and the error must not
        // replace it.
      }
      return undefined;
    });
  },
  fail(_call, error) {
    throw error; // to Hono's error handler (`app.onError`)
  },
  broken(_call, thrown) {
    throw thrown; // Hono awaits the middleware: its error handler gets it
  },
};

export type { AuthResult, DPoPAuth, DPoPAuthOptions } from '../auth.ts';
