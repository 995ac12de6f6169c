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
});
