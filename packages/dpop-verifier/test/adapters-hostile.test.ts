// The adapters under hostile conditions, over real HTTP: answers that arrive after someone else
// answered (a request-timeout layer while a real, slow introspection endpoint thinks), clients
// that leave mid-verification, callbacks and verifiers that throw, and fake CORS preflights.
// No popkit code may throw where nobody catches it: every test fails on an uncaughtException or
// unhandledRejection in this process.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import fastifyCors from '@fastify/cors';
import { serve } from '@hono/node-server';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import cors from 'cors';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { cors as honoCors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { timeout as honoTimeout } from 'hono/timeout';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { exposeHeaders, isCorsPreflight } from '../src/cors.ts';
import { dpopAuth as expressAuth } from '../src/express/index.ts';
import { dpopAuthPlugin } from '../src/fastify/index.ts';
import type { DPoPAuthEnv } from '../src/hono/index.ts';
import { dpopAuth as honoAuth } from '../src/hono/index.ts';
import type { DPoPAuth, DPoPAuthOptions } from '../src/index.ts';
import { DPoPError, MemoryReplayStore } from '../src/index.ts';

const ISSUER = 'https://as.hostile.test';
const AUDIENCE = 'https://rs.hostile.test';
const ORIGIN = 'https://app.hostile.test';
const DELAY_MS = 300; // the introspection endpoint's
const TIMEOUT_MS = 50; // the timeout layer's

type Framework = 'express 5' | 'express 4' | 'fastify' | 'hono';
const FRAMEWORKS: readonly Framework[] = ['express 5', 'express 4', 'fastify', 'hono'];

// --- no popkit error escapes: any uncaught exception or unhandled rejection fails the test ---
const escaped: string[] = [];
const onUncaught = (error: unknown) => escaped.push(`uncaughtException: ${String(error)}`);
const onUnhandled = (reason: unknown) => escaped.push(`unhandledRejection: ${String(reason)}`);
beforeAll(() => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUnhandled);
});
beforeEach(() => {
  escaped.length = 0;
});
afterEach(() => {
  expect(escaped).toEqual([]);
});

// --- a real, slow RFC 7662 endpoint: `live.<jkt>.…` is active and bound to <jkt> ---
let introspection: Server;
let introspectionUrl: string;
let key: CryptoKeyPair;
let jkt: string;
beforeAll(async () => {
  key = await generateKeyPair();
  jkt = await thumbprint(key);
  introspection = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const [kind, bound] = (new URLSearchParams(body).get('token') ?? '').split('.');
      const answer =
        kind === 'live'
          ? { active: true, iss: ISSUER, aud: AUDIENCE, sub: 'u1', cnf: { jkt: bound } }
          : { active: false };
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer));
      }, DELAY_MS);
    });
  });
  await new Promise<void>((r) => introspection.listen(0, '127.0.0.1', r));
  introspectionUrl = `http://127.0.0.1:${(introspection.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  introspection.closeAllConnections();
  await new Promise((r) => introspection.close(r));
});

const random = () => Math.random().toString(36).slice(2);
const live = () => `live.${jkt}.${random()}`;
const garbage = () => `garbage${random()}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Slow tokens (introspection), or instant ones (a local hook with the same rule). */
function authOptions(
  tokens: 'slow' | 'instant',
  extra: Partial<DPoPAuthOptions> = {},
): DPoPAuthOptions {
  return {
    accessToken:
      tokens === 'slow'
        ? {
            introspection: {
              endpoint: introspectionUrl,
              clientId: 'rs',
              clientSecret: 'rs-secret',
              issuer: ISSUER,
              audience: AUDIENCE,
              cacheTtl: 0,
              negativeCacheTtl: 0,
            },
          }
        : (token) => {
            const [kind, bound] = token.split('.');
            if (kind !== 'live') throw new Error('unknown token');
            return { sub: 'u1', cnf: { jkt: bound! } };
          },
    replay: new MemoryReplayStore({ maxBytes: 1 << 20 }),
    dangerouslyTrustRequestUrl: true, // 127.0.0.1 on an ephemeral port (tests only)
    ...extra,
  };
}

async function credentials(url: string, method: string, token: string) {
  return {
    authorization: `DPoP ${token}`,
    dpop: await createProof(key, { method, url, accessToken: token }),
  };
}

interface Built {
  url: string;
  /** Runs of the catch-all `/api/*` handler. */
  runs: string[];
  /** The framework's warnings so far (Fastify's "Reply was already sent", for one). */
  warnings(): string[];
  close(): Promise<void>;
}

interface BuildOptions {
  auth: DPoPAuthOptions | DPoPAuth;
  /** A request-timeout layer that answers 503 after this many ms. */
  timeoutMs?: number;
  /** A CORS layer in front: grants ORIGIN; 'deny' grants none; 'continue' hands preflights on. */
  cors?: 'allow' | 'deny' | 'continue';
}

/** A server with `GET /health`, and popkit in front of a catch-all handler on `/api/*`. */
async function build(framework: Framework, o: BuildOptions): Promise<Built> {
  const runs: string[] = [];
  if (framework === 'express 5' || framework === 'express 4') {
    const app = ((framework === 'express 4' ? express4 : express) as typeof express)();
    app.get('/health', (_req, res) => {
      res.send('ok');
    });
    if (o.timeoutMs !== undefined) app.use(expressTimeout(o.timeoutMs));
    if (o.cors !== undefined) {
      app.use(
        cors({
          origin: o.cors === 'deny' ? (_o, cb) => cb(null, false) : ORIGIN,
          preflightContinue: o.cors === 'continue',
        }),
      );
    }
    app.use('/api', expressAuth(o.auth));
    app.all(/^\/api\//, (req, res) => {
      runs.push(`${req.method} ${req.originalUrl}`);
      res.json({ handler: 'ran' });
    });
    return listen(createServer(app), runs);
  }
  if (framework === 'fastify') {
    const warnings: string[] = [];
    const app = Fastify({
      logger: { level: 'warn', stream: { write: (line: string) => void warnings.push(line) } },
      ...(o.timeoutMs === undefined ? {} : { handlerTimeout: o.timeoutMs }),
    });
    app.get('/health', async () => 'ok');
    if (o.cors !== undefined) {
      await app.register(fastifyCors, {
        origin: o.cors === 'deny' ? (_o, cb) => cb(null, false) : ORIGIN,
        preflightContinue: o.cors === 'continue',
      });
    }
    await app.register(
      async (api) => {
        await api.register(dpopAuthPlugin, o.auth);
        api.all('/*', async (request) => {
          runs.push(`${request.method} ${request.url}`);
          return { handler: 'ran' };
        });
      },
      { prefix: '/api' },
    );
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return {
      url,
      runs,
      // (the timeout's own 503 is logged as an error, level 50; warnings are level 40)
      warnings: () => warnings.filter((w) => /"level":40/.test(w)),
      close: () => app.close(),
    };
  }
  const app = new Hono<DPoPAuthEnv>();
  app.onError((error, c) =>
    c.text('error', error instanceof HTTPException ? error.getResponse().status : 500),
  );
  app.get('/health', (c) => c.text('ok'));
  if (o.cors !== undefined)
    app.use('*', honoCors({ origin: o.cors === 'deny' ? () => null : ORIGIN }));
  if (o.timeoutMs !== undefined) {
    app.use(
      '/api/*',
      honoTimeout(o.timeoutMs, () => new HTTPException(503, { message: 'request timed out' })),
    );
  }
  app.use('/api/*', honoAuth(o.auth));
  app.all('/api/*', (c) => {
    runs.push(`${c.req.method} ${new URL(c.req.url).pathname}`);
    return c.json({ handler: 'ran' });
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  await new Promise((r) => server.once('listening', r));
  return listen(server, runs, true);
}

/** A request-timeout middleware of the common kind: answers 503 on its own after `ms`. */
function expressTimeout(ms: number): express.RequestHandler {
  return (_req, res, next) => {
    const timer = setTimeout(() => {
      if (!res.headersSent) res.status(503).type('text/plain').send('request timed out');
    }, ms);
    res.once('close', () => clearTimeout(timer));
    next();
  };
}

async function listen(server: Server, runs: string[], listening = false): Promise<Built> {
  if (!listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    runs,
    warnings: () => [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The server still answers, and its framework saw no late write. */
async function expectAlive(server: Built) {
  const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(1000) });
  expect(await res.text()).toBe('ok');
  expect(server.warnings()).toEqual([]);
}

/** A GET whose verification takes DELAY_MS while the timeout layer answers at TIMEOUT_MS. */
async function lateAnswer(server: Built, token: string) {
  const url = `${server.url}/api/orders`;
  // (GET: Fastify's handlerTimeout stops counting once a request body has been read)
  const res = await fetch(url, { headers: await credentials(url, 'GET', token) });
  expect(res.status).toBe(503);
  await sleep(DELAY_MS + 100); // popkit's answer arrives now, onto the finished response
}

describe('late answers: a timeout layer answered while a slow introspection call ran', () => {
  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      let timed: Built;
      let plain: Built;
      beforeAll(async () => {
        timed = await build(framework, {
          auth: authOptions('slow'),
          timeoutMs: TIMEOUT_MS,
        });
        plain = await build(framework, { auth: authOptions('slow') });
      });
      afterAll(async () => {
        await timed?.close();
        await plain?.close();
      });

      it('control: without the timeout layer, a slow POST with a body is accepted and the handler runs', async () => {
        const url = `${plain.url}/api/orders`;
        const res = await fetch(url, {
          method: 'POST',
          headers: await credentials(url, 'POST', live()),
          body: 'x=1',
        });
        expect(res.status).toBe(200);
        expect(plain.runs).toEqual(['POST /api/orders']);
        plain.runs.length = 0;
      });

      it('a garbage token with a valid proof, refused late: nothing is written, nothing thrown', async () => {
        await lateAnswer(timed, garbage());
        await expectAlive(timed);
        expect(timed.runs).toEqual([]);
      });

      it('a live token, accepted late: the handler does not run after the client had its 503', async () => {
        await lateAnswer(timed, live());
        await expectAlive(timed);
        expect(timed.runs).toEqual([]);
      });

      it('a client that leaves during the verification: nothing is written, the handler does not run', async () => {
        const url = `${plain.url}/api/orders`;
        for (const token of [live(), garbage()]) {
          const req = httpRequest(url, { headers: await credentials(url, 'GET', token) });
          req.on('error', () => undefined);
          req.end();
          await sleep(TIMEOUT_MS);
          req.destroy();
        }
        await sleep(DELAY_MS + 100);
        await expectAlive(plain);
        expect(plain.runs).toEqual([]);
      });
    });
  }
});

describe('express: the response closed before popkit ran', () => {
  for (const framework of ['express 5', 'express 4'] as const) {
    it(`${framework}: a timeout that answered while a slow middleware ran before popkit: the handler does not run`, async () => {
      const runs: string[] = [];
      const app = ((framework === 'express 4' ? express4 : express) as typeof express)();
      app.use(expressTimeout(TIMEOUT_MS));
      app.use((_req, _res, next) => void setTimeout(next, 2 * TIMEOUT_MS)); // a slow body parser
      app.use(expressAuth(authOptions('instant'))); // verified synchronously
      app.all(/.*/, (req, res) => {
        runs.push(req.method);
        res.json({ handler: 'ran' });
      });
      const server = await listen(createServer(app), runs);
      try {
        const url = `${server.url}/api/orders`;
        for (const extra of [{}, { origin: ORIGIN }]) {
          const res = await fetch(url, {
            headers: { ...(await credentials(url, 'GET', live())), ...extra },
          });
          expect(res.status).toBe(503);
        }
        await sleep(3 * TIMEOUT_MS);
        expect(runs).toEqual([]);
      } finally {
        await server.close();
      }
    });

    it(`${framework}: headers sent by a middleware that then called next(): popkit closes the response instead of leaving it open`, async () => {
      const runs: string[] = [];
      const app = ((framework === 'express 4' ? express4 : express) as typeof express)();
      app.use((_req, res, next) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        next();
      });
      app.use(expressAuth(authOptions('instant')));
      app.all(/.*/, (req, res) => {
        runs.push(req.method);
        res.end('handler ran');
      });
      const server = await listen(createServer(app), runs);
      try {
        const url = `${server.url}/x`;
        for (const token of [live(), garbage()]) {
          const res = await fetch(url, {
            headers: await credentials(url, 'GET', token),
            signal: AbortSignal.timeout(2000),
          });
          // popkit can carry no answer on this response: it neither continues nor leaves the
          // connection open until some timeout, it closes it
          await expect(res.text()).rejects.toThrow(/terminated|aborted|other side closed/i);
        }
        expect(runs).toEqual([]);
      } finally {
        await server.close();
      }
    });
  }
});

describe('callbacks and verifiers that throw', () => {
  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      const started: Built[] = [];
      afterAll(async () => {
        for (const s of started) await s.close();
      });
      const start = async (o: BuildOptions) => {
        const server = await build(framework, o);
        started.push(server);
        return server;
      };

      it('an onResult that throws changes no answer (synchronous and asynchronous verification)', async () => {
        const onResult = () => {
          throw new Error('metrics backend down');
        };
        for (const tokens of ['instant', 'slow'] as const) {
          const server = await start({ auth: authOptions(tokens, { onResult }) });
          const url = `${server.url}/api/orders`;
          const ok = await fetch(url, { headers: await credentials(url, 'GET', live()) });
          expect([tokens, ok.status]).toEqual([tokens, 200]);
          const refused = await fetch(url, { headers: await credentials(url, 'GET', garbage()) });
          expect([tokens, refused.status]).toEqual([tokens, 401]);
          expect(server.runs).toEqual(['GET /api/orders']);
          await expectAlive(server);
        }
      });

      it("popkit's own verify failing inside (a replay store that throws or rejects, claims that throw) answers a typed 503", async () => {
        const stores = {
          throws: {
            useOnce: () => {
              throw new Error('store down');
            },
          },
          rejects: { useOnce: async () => Promise.reject(new Error('store down')) },
        };
        for (const [name, replay] of Object.entries(stores)) {
          const server = await start({ auth: authOptions('instant', { replay }) });
          const url = `${server.url}/api/orders`;
          const res = await fetch(url, { headers: await credentials(url, 'GET', live()) });
          expect([name, res.status, res.headers.get('retry-after')]).toEqual([name, 503, '1']);
          expect(res.headers.get('cache-control')).toBe('no-store');
          expect(server.runs).toEqual([]);
        }
        const hostileClaims = await start({
          auth: authOptions('instant', {
            accessToken: () =>
              Object.defineProperty({}, 'cnf', {
                get() {
                  throw new Error('claims exploded');
                },
              }),
          }),
        });
        const url = `${hostileClaims.url}/api/orders`;
        const res = await fetch(url, { headers: await credentials(url, 'GET', live()) });
        expect(res.status).toBe(503);
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(await res.text()).not.toMatch(/exploded/);
        expect(hostileClaims.runs).toEqual([]);
        await expectAlive(hostileClaims);
        // a user hook of the options that throws (here publicUrl): the same typed 503
        const { dangerouslyTrustRequestUrl: _, ...rest } = authOptions('instant');
        const hostileUrl = await start({
          auth: {
            ...rest,
            publicUrl: () => {
              throw new Error('no url');
            },
          },
        });
        const hookUrl = `${hostileUrl.url}/api/orders`;
        const hook = await fetch(hookUrl, { headers: await credentials(hookUrl, 'GET', live()) });
        expect(hook.status).toBe(503);
        expect(hostileUrl.runs).toEqual([]);
      });

      it('a custom DPoPAuth that fails with a non-Error value, or resolves with nothing, never lets the request through', async () => {
        // Express reads next(undefined | null | 0) as "no error" and next('route') as "skip to the
        // next route": before, each of these continued to the handler unauthenticated.
        const failures: unknown[] = [undefined, null, 0, '', 'route', 'router', false];
        for (const value of failures) {
          const server = await start({
            auth: {
              verify: async () => {
                throw value;
              },
            },
          });
          const res = await fetch(`${server.url}/api/orders`);
          expect([String(value), res.status]).toEqual([String(value), 500]);
          expect(server.runs).toEqual([]);
        }
        const empty = await start({ auth: { verify: async () => undefined as never } });
        const res = await fetch(`${empty.url}/api/orders`);
        expect(res.status).toBe(500);
        expect(empty.runs).toEqual([]);
        await expectAlive(empty);
      });

      it('a custom DPoPAuth whose answer Node refuses to write (bad header value, bad status) gets an error answer, not a crash', async () => {
        const badHeader = await start({
          auth: {
            verify: async () =>
              ({
                token: 't',
                claims: {},
                scheme: 'DPoP',
                headers: { 'DPoP-Nonce': 'a\r\nb' },
              }) as never,
          },
        });
        const res = await fetch(`${badHeader.url}/api/orders`);
        // Express and Fastify refuse the header (500); Hono's Headers refuse it and popkit leaves
        // the response as the handler made it
        expect(res.status).toBe(framework === 'hono' ? 200 : 500);
        expect(res.headers.get('dpop-nonce')).toBeNull();
        const badStatus = await start({
          auth: {
            verify: async () => {
              throw new DPoPError('invalid_token', 'token_invalid', 'no', { status: 1000 });
            },
          },
        });
        const refused = await fetch(`${badStatus.url}/api/orders`);
        expect(refused.status).toBe(500);
        expect(badStatus.runs).toEqual([]);
        await expectAlive(badStatus);
      });
    });
  }
});

describe('hono: a form body that cannot be read', () => {
  it('is verified without it: the typed answer (it was a 500: the read error was rethrown)', async () => {
    const app = new Hono<DPoPAuthEnv>();
    app.use('*', honoAuth(authOptions('instant')));
    app.all('*', (c) => c.text('handler ran'));
    const broken = () =>
      new Request('http://127.0.0.1/api/form', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '10' },
        body: new ReadableStream({
          pull(controller) {
            controller.error(new Error('connection reset'));
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const res = await app.request(broken());
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^DPoP algs=/);
  });
});

describe('an expose list set before popkit as an array (Node and Fastify keep it so)', () => {
  it('exposeHeaders merges strings, arrays and numbers; anything else is replaced', () => {
    expect(exposeHeaders(['X-A', 'X-B'])).toBe('X-A, X-B, DPoP-Nonce, WWW-Authenticate, Date');
    expect(exposeHeaders(['X-A', 'dpop-nonce'])).toBe('X-A, dpop-nonce, WWW-Authenticate, Date');
    expect(exposeHeaders('X-A')).toBe('X-A, DPoP-Nonce, WWW-Authenticate, Date');
    expect(exposeHeaders(7)).toBe('7, DPoP-Nonce, WWW-Authenticate, Date');
    expect(exposeHeaders(undefined)).toBe('DPoP-Nonce, WWW-Authenticate, Date');
    expect(exposeHeaders({})).toBe('DPoP-Nonce, WWW-Authenticate, Date');
    expect(exposeHeaders([])).toBe('DPoP-Nonce, WWW-Authenticate, Date');
  });

  for (const framework of ['express 5', 'fastify'] as const) {
    it(`${framework}: a CORS request is answered as usual (it was a 500: the list was assumed a string)`, async () => {
      let url: string;
      let close: () => Promise<void>;
      if (framework === 'express 5') {
        const app = express();
        app.use((_req, res, next) => {
          res.setHeader('Access-Control-Expose-Headers', ['X-A', 'X-B']);
          next();
        });
        app.use(expressAuth(authOptions('instant')));
        const server = await listen(createServer(app), []);
        ({ url, close } = server);
      } else {
        const app = Fastify();
        app.addHook('onRequest', async (_request, reply) => {
          reply.header('Access-Control-Expose-Headers', ['X-A', 'X-B']);
        });
        await app.register(dpopAuthPlugin, authOptions('instant'));
        app.get('/x', async () => 'ok');
        url = await app.listen({ port: 0, host: '127.0.0.1' });
        close = () => app.close();
      }
      try {
        const res = await fetch(`${url}/x`, { headers: { origin: ORIGIN } });
        expect(res.status).toBe(401);
        expect(res.headers.get('access-control-expose-headers')).toBe(
          'X-A, X-B, DPoP-Nonce, WWW-Authenticate, Date',
        );
      } finally {
        await close();
      }
    });
  }
});

describe('CORS preflights', () => {
  it('isCorsPreflight: OPTIONS with Origin and Access-Control-Request-Method, and no credentials', () => {
    const real = ['OPTIONS', ORIGIN, 'POST', undefined, undefined] as const;
    expect(isCorsPreflight(...real)).toBe(true);
    expect(isCorsPreflight('OPTIONS', ORIGIN, 'POST', null, null)).toBe(true); // (Headers.get)
    expect(isCorsPreflight('GET', ORIGIN, 'POST', undefined, undefined)).toBe(false);
    expect(isCorsPreflight('options', ORIGIN, 'POST', undefined, undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', undefined, 'POST', undefined, undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', '', 'POST', undefined, undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', ORIGIN, undefined, undefined, undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', ORIGIN, '', undefined, undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', ORIGIN, ['POST'], undefined, undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', ORIGIN, 'POST', 'DPoP x', undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', ORIGIN, 'POST', '', undefined)).toBe(false);
    expect(isCorsPreflight('OPTIONS', ORIGIN, 'POST', undefined, 'proof')).toBe(false);
  });

  const fakes: Record<string, Record<string, string>> = {
    'no Origin': { 'access-control-request-method': 'POST' },
    'Origin and a credential': {
      'access-control-request-method': 'POST',
      origin: ORIGIN,
      authorization: 'DPoP garbage',
    },
    'Origin and a DPoP header': {
      'access-control-request-method': 'POST',
      origin: ORIGIN,
      dpop: 'x.y.z',
    },
  };
  const real = { 'access-control-request-method': 'POST', origin: ORIGIN };

  for (const framework of FRAMEWORKS) {
    const modes: Array<BuildOptions['cors']> = [
      undefined,
      'allow',
      'deny',
      ...(framework === 'hono' ? [] : (['continue'] as const)),
    ];
    for (const mode of modes) {
      it(`${framework}, ${mode === undefined ? 'no CORS layer' : `CORS layer '${mode}'`}: fake preflights never reach the handler, real ones are answered 204`, async () => {
        const server = await build(framework, {
          auth: authOptions('instant'),
          ...(mode === undefined ? {} : { cors: mode }),
        });
        try {
          const url = `${server.url}/api/orders`;
          for (const [name, headers] of Object.entries(fakes)) {
            const res = await fetch(url, { method: 'OPTIONS', headers });
            // refused by popkit (401), or answered by the CORS layer: never by the handler
            expect([name, res.status]).toEqual([
              name,
              mode === undefined ? 401 : expect.any(Number),
            ]);
            expect([name, await res.text()]).not.toEqual([name, expect.stringMatching(/handler/)]);
          }
          const preflight = await fetch(url, { method: 'OPTIONS', headers: real });
          expect(preflight.status).toBe(204);
          expect(await preflight.text()).toBe('');
          // popkit grants nothing itself; the CORS layer's grant (even with preflightContinue) stays
          expect(preflight.headers.get('access-control-allow-origin')).toBe(
            mode === 'allow' || mode === 'continue' ? ORIGIN : null,
          );
          expect(server.runs).toEqual([]);
          // the handler does run for an authenticated OPTIONS request (it is a method like any other)
          if (mode === undefined) {
            const authed = await fetch(url, {
              method: 'OPTIONS',
              headers: { ...real, ...(await credentials(url, 'OPTIONS', live())) },
            });
            expect(authed.status).toBe(200);
            expect(server.runs).toEqual(['OPTIONS /api/orders']);
          }
        } finally {
          await server.close();
        }
      });
    }
  }
});
