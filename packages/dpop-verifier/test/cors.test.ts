// Browser clients on another origin, in real Chromium: the page (origin A) calls APIs on origin B
// through Express + cors, Fastify + @fastify/cors and Hono + hono/cors, each with popkit's
// adapter. The browser must be able to read DPoP-Nonce and WWW-Authenticate (RFC 9449 §7.1, §8).
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import fastifyCors from '@fastify/cors';
import cors from 'cors';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { cors as honoCors } from 'hono/cors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleInPage } from '../../../test-support/browser-bundle.ts';
import { bundleInChromium } from '../../../test-support/browser-bundle.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH } from '../../../test-support/chromium.ts';
import { requireBinary } from '../../../test-support/binaries.ts';
import { dpopAuth as expressAuth } from '../src/express/index.ts';
import { dpopAuthPlugin } from '../src/fastify/index.ts';
import type { DPoPAuthEnv } from '../src/hono/index.ts';
import { dpopAuth as honoAuth } from '../src/hono/index.ts';
import type { DPoPAuthOptions } from '../src/index.ts';
import {
  DPOP_CORS_ALLOW_HEADERS,
  DPOP_CORS_EXPOSE_HEADERS,
  MemoryReplayStore,
  createNonceIssuer,
} from '../src/index.ts';

const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);

describe.skipIf(!available)('CORS: an SPA on another origin reads the nonce and the error', () => {
  let env: BundleInPage;
  const servers: Array<{ close(): unknown }> = [];
  const apis: Record<string, string> = {};

  const options = (base: { url: string }): DPoPAuthOptions => ({
    // tokens are "tok.<jkt>": the test's own validator (the binding is what matters here)
    accessToken: (token) => ({ cnf: { jkt: token.slice(4) } }),
    publicUrl: (request) => `${base.url}${request.url.replace(/^https?:\/\/[^/]+/, '')}`,
    replay: new MemoryReplayStore(),
    nonces: createNonceIssuer({ secret: 'cors-test-nonce-secret-of-32-bytes!!' }),
  });
  const listen = async (server: Server) => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  /** The same three stacks with the app's own expose list (`X-Request-Id`): popkit's is merged in. */
  const ownList: Record<string, string> = {};

  beforeAll(async () => {
    env = await bundleInChromium(
      `export { createDPoPFetch, generateKeyPair, thumbprint } from '@popkit/dpop-client';`,
      fileURLToPath(new URL('.', import.meta.url)),
    );
    // Express + cors (the minimal configuration: the origin only)
    {
      const base = { url: '' };
      const app = express();
      app.use(cors({ origin: env.origin }));
      app.use('/api', expressAuth(options(base)));
      app.get('/api/me', (req, res) => res.json({ jkt: req.auth!.jkt }));
      base.url = await listen(createServer(app));
      apis.express = base.url;
    }
    // Fastify + @fastify/cors, with popkit's lists
    {
      const base = { url: '' };
      const app = Fastify();
      await app.register(fastifyCors, {
        origin: env.origin,
        allowedHeaders: [...DPOP_CORS_ALLOW_HEADERS],
        exposedHeaders: [...DPOP_CORS_EXPOSE_HEADERS],
      });
      await app.register(
        async (api) => {
          await api.register(dpopAuthPlugin, options(base));
          api.get('/me', async (request) => ({ jkt: request.auth!.jkt }));
        },
        { prefix: '/api' },
      );
      base.url = await app.listen({ port: 0, host: '127.0.0.1' });
      servers.push({ close: () => app.close() });
      apis.fastify = base.url;
    }
    // Hono + hono/cors (bridged onto node:http)
    {
      const base = { url: '' };
      const app = new Hono<DPoPAuthEnv>();
      app.use('*', honoCors({ origin: env.origin }));
      app.use('/api/*', honoAuth(options(base)));
      app.get('/api/me', (c) => c.json({ jkt: c.get('auth').jkt }));
      const server = createServer(async (req, res) => {
        const headers = new Headers();
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
        const response = await app.fetch(
          new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers }),
        );
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(Buffer.from(await response.arrayBuffer()));
      });
      base.url = await listen(server);
      apis.hono = base.url;
    }
    // The app exposes a header of its own, through each CORS middleware
    const stamp = 'X-Request-Id';
    {
      const base = { url: '' };
      const app = express();
      app.use(cors({ origin: env.origin, exposedHeaders: [stamp] }));
      app.use((_req, res, next) => void res.setHeader(stamp, 'r-1') ?? next());
      app.use('/api', expressAuth(options(base)));
      app.get('/api/me', (req, res) => res.json({ jkt: req.auth!.jkt }));
      base.url = await listen(createServer(app));
      ownList.express = base.url;
    }
    {
      const base = { url: '' };
      const app = Fastify();
      await app.register(fastifyCors, { origin: env.origin, exposedHeaders: [stamp] });
      app.addHook('onRequest', async (_request, reply) => void reply.header(stamp, 'r-1'));
      await app.register(
        async (api) => {
          await api.register(dpopAuthPlugin, options(base));
          api.get('/me', async (request) => ({ jkt: request.auth!.jkt }));
        },
        { prefix: '/api' },
      );
      base.url = await app.listen({ port: 0, host: '127.0.0.1' });
      servers.push({ close: () => app.close() });
      ownList.fastify = base.url;
    }
    {
      const base = { url: '' };
      const app = new Hono<DPoPAuthEnv>();
      app.use('*', honoCors({ origin: env.origin, exposeHeaders: [stamp] }));
      app.use('*', async (c, next) => {
        c.header(stamp, 'r-1');
        await next();
      });
      app.use('/api/*', honoAuth(options(base)));
      app.get('/api/me', (c) => c.json({ jkt: c.get('auth').jkt }));
      const server = createServer(async (req, res) => {
        const headers = new Headers();
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
        const response = await app.fetch(
          new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers }),
        );
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(Buffer.from(await response.arrayBuffer()));
      });
      base.url = await listen(server);
      ownList.hono = base.url;
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) await s.close();
    await env?.close();
  });

  it('each adapter with its usual CORS middleware: nonce retry succeeds, errors are readable', async () => {
    for (const [name, base] of Object.entries(apis)) {
      const outcome = await env.page.evaluate(async (api) => {
        const m = (window as any).popkit;
        const key = await m.generateKeyPair();
        const token = `tok.${await m.thumbprint(key)}`;
        const events: string[] = [];
        const dpopFetch = m.createDPoPFetch(key, { onEvent: (e: any) => events.push(e.type) });
        const ok = await dpopFetch(`${api}/api/me`, { accessToken: token });
        const bare = await fetch(`${api}/api/me`);
        return {
          status: ok.status,
          retried: events.includes('retry'),
          bareStatus: bare.status,
          challenge: bare.headers.get('www-authenticate'),
        };
      }, base);
      expect([name, outcome]).toEqual([
        name,
        {
          status: 200,
          retried: true,
          bareStatus: 401,
          challenge: expect.stringMatching(/^DPoP algs=/),
        },
      ]);
    }
  });

  it("Date is readable on refusals and successes, and the app's own expose list is kept", async () => {
    for (const [name, base] of Object.entries({ ...apis, ...ownList })) {
      const own = Object.values(ownList).includes(base);
      const outcome = await env.page.evaluate(async (api) => {
        const m = (window as any).popkit;
        const key = await m.generateKeyPair();
        const token = `tok.${await m.thumbprint(key)}`;
        const ok = await m.createDPoPFetch(key)(`${api}/api/me`, { accessToken: token });
        const bare = await fetch(`${api}/api/me`);
        const seen = (r: Response) => ({
          status: r.status,
          date: Number.isFinite(Date.parse(r.headers.get('date') ?? '')),
          challenge: r.headers.get('www-authenticate') !== null,
          stamp: r.headers.get('x-request-id'),
        });
        return { ok: seen(ok), bare: seen(bare) };
      }, base);
      const stamp = own ? 'r-1' : null;
      expect([name, own, outcome]).toEqual([
        name,
        own,
        {
          ok: { status: 200, date: true, challenge: false, stamp },
          bare: { status: 401, date: true, challenge: true, stamp },
        },
      ]);
    }
  });

  for (const [skew, label] of [
    [10 * 60_000, '10 min fast'],
    [-10 * 60_000, '10 min slow'],
  ] as const) {
    it(`a page whose clock is ${label} (Playwright's clock): one retry per request learns the offset`, async () => {
      const page = await env.browser.newPage();
      try {
        await page.clock.install({ time: Date.now() + skew });
        await env.open(page);
        const pageSkew = await page.evaluate(() => Date.now());
        expect(Math.abs(pageSkew - (Date.now() + skew))).toBeLessThan(30_000);
        for (const [name, base] of Object.entries({ ...apis, ...ownList })) {
          const outcome = await page.evaluate(async (api) => {
            const m = (window as any).popkit;
            const key = await m.generateKeyPair();
            const token = `tok.${await m.thumbprint(key)}`;
            const events: any[] = [];
            const dpopFetch = m.createDPoPFetch(key, { onEvent: (e: any) => events.push(e) });
            const statuses: number[] = [];
            for (let i = 0; i < 3; i++)
              statuses.push((await dpopFetch(`${api}/api/me`, { accessToken: token })).status);
            return {
              statuses,
              retries: events.filter((e) => e.type === 'retry').length,
              offsets: events.filter((e) => e.type === 'clock-offset').map((e) => e.offset),
            };
          }, base);
          // the first request: one retry (the nonce and the server clock learned together);
          // the next two: none
          expect([name, outcome.statuses, outcome.retries]).toEqual([name, [200, 200, 200], 1]);
          expect(outcome.offsets).toHaveLength(1);
          expect(Math.abs(outcome.offsets[0] + skew / 1000)).toBeLessThan(30);
        }
      } finally {
        await page.close();
      }
    });
  }
});
