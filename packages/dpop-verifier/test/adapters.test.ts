import type { Server } from 'node:http';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDPoPFetch, createProof } from '@popkit/dpop-client';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpopAuth as expressAuth } from '../src/express/index.ts';
import { dpopAuthHook, dpopAuthPlugin } from '../src/fastify/index.ts';
import type { DPoPAuthEnv } from '../src/hono/index.ts';
import { dpopAuth as honoAuth } from '../src/hono/index.ts';
import type { DPoPAuthOptions } from '../src/index.ts';
import { MemoryReplayStore, createNonceIssuer } from '../src/index.ts';
import { AUDIENCE, ISSUER, clientKey, testIssuer } from './helpers.ts';

let as: Awaited<ReturnType<typeof testIssuer>>;
const store = new MemoryReplayStore();
const nonces = createNonceIssuer({ secret: 'adapter-tests-'.padEnd(40, 'x') });
const authOptions = (): DPoPAuthOptions => ({
  accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: as.jwks as never },
  replay: store,
  nonces,
  dangerouslyTrustRequestUrl: true, // servers on ephemeral 127.0.0.1 ports (tests only)
});

beforeAll(async () => {
  as = await testIssuer();
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The same scenario against any adapter: nonce round trip, success, replay, stolen token, bare request. */
async function scenario(base: string, normalisesPaths = false) {
  const k = await clientKey();
  const thief = await clientKey();
  const token = await as.mint({ cnf: { jkt: k.jkt } });
  const dpopFetch = createDPoPFetch(k.keyPair);
  const ok = await dpopFetch(`${base}/api/me?x=1`, { accessToken: token });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toEqual({ sub: 'user-1', jkt: k.jkt, scheme: 'DPoP' });

  // replay the exact request a second time
  const nonce = await nonces.current(undefined, store.epoch);
  const proof = await createProof(k.keyPair, {
    method: 'GET',
    url: `${base}/api/me`,
    accessToken: token,
    nonce,
  });
  const first = await fetch(`${base}/api/me`, {
    headers: { authorization: `DPoP ${token}`, dpop: proof },
  });
  expect(first.status).toBe(200);
  const replay = await fetch(`${base}/api/me`, {
    headers: { authorization: `DPoP ${token}`, dpop: proof },
  });
  expect(replay.status).toBe(401);
  expect(replay.headers.get('www-authenticate')).toMatch(
    /^DPoP error="invalid_dpop_proof", error_description="The DPoP proof has already been used"/,
  );

  const stolen = await createDPoPFetch(thief.keyPair)(`${base}/api/me`, { accessToken: token });
  expect(stolen.status).toBe(401);
  expect(stolen.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);

  const bare = await fetch(`${base}/api/me`);
  expect(bare.status).toBe(401);
  expect(bare.headers.get('www-authenticate')).toBe('DPoP algs="ES256 EdDSA Ed25519 PS256 RS256"');

  // CORS response headers go to CORS requests (with Origin), refused or accepted, and only there
  const origin = { origin: 'https://app.example.com' };
  expect(bare.headers.get('access-control-expose-headers')).toBeNull();
  expect(ok.headers.get('access-control-expose-headers')).toBeNull();
  const crossBare = await fetch(`${base}/api/me`, { headers: origin });
  expect(crossBare.status).toBe(401);
  const crossOk = await dpopFetch(`${base}/api/me`, { accessToken: token, headers: origin });
  expect(crossOk.status).toBe(200);
  for (const res of [crossBare, crossOk]) {
    expect(res.headers.get('access-control-expose-headers')).toBe(
      'DPoP-Nonce, WWW-Authenticate, Date',
    );
  }

  const noNonce = await fetch(`${base}/api/me`, {
    headers: {
      authorization: `DPoP ${token}`,
      dpop: await createProof(k.keyPair, {
        method: 'GET',
        url: `${base}/api/me`,
        accessToken: token,
      }),
    },
  });
  expect(noNonce.status).toBe(401);
  expect(noNonce.headers.get('dpop-nonce')).toBe(await nonces.current(undefined, store.epoch));

  const open = await fetch(`${base}/health`);
  expect(await open.text()).toBe('ok');

  await requestLevelChecks(base, k, token, normalisesPaths);
}

/** Sends a request with its path exactly as given (fetch would normalise dot segments). */
function raw(
  base: string,
  path: string,
  headers: Record<string, string | string[]>,
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, path, method: body === undefined ? 'GET' : 'POST', headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Request-level rules every adapter must enforce (RFC 9449 §7, RFC 6750 §2-3). */
async function requestLevelChecks(
  base: string,
  k: Awaited<ReturnType<typeof clientKey>>,
  token: string,
  normalisesPaths: boolean,
) {
  const nonce = await nonces.current(undefined, store.epoch);
  const signed = async (method: string, url: string) => ({
    authorization: `DPoP ${token}`,
    dpop: await createProof(k.keyPair, { method, url, accessToken: token, nonce }),
  });
  // dot segments and backslashes: the proof names /api/me, the raw path is something else
  for (const path of ['/api/x/../me', '/api/x/%2E%2e/me', '/api/./me', '/api\\me', '/api%5Cme']) {
    const res = await raw(base, path, await signed('GET', `${base}/api/me`));
    // A stack that normalises the path before routing (Hono behind a WHATWG URL parser) serves
    // exactly what the proof names; one that routes the raw path refuses it before routing.
    // (404: no route matched, so nothing was served either.)
    expect([path, normalisesPaths ? [200, 404] : [400, 404]]).toEqual([
      path,
      expect.arrayContaining([res.status]),
    ]);
    if (res.status === 400)
      expect(res.headers['www-authenticate']).toMatch(/^DPoP error="invalid_request"/);
  }
  // the token also in the query string
  const inQuery = await raw(
    base,
    `/api/me?access_token=${token}`,
    await signed('GET', `${base}/api/me`),
  );
  expect(inQuery.status).toBe(400);
  expect(inQuery.headers['www-authenticate']).toMatch(/^DPoP error="invalid_request"/);
  // two Authorization headers: 400 whose challenge carries error="invalid_request"
  const twice = await raw(base, '/api/me', {
    ...(await signed('GET', `${base}/api/me`)),
    authorization: [`DPoP ${token}`, `DPoP ${token}`],
  });
  expect(twice.status).toBe(400);
  expect(twice.headers['www-authenticate']).toMatch(/^DPoP error="invalid_request"/);
}

/** The token also in a form body: refused where the framework parsed the form. */
async function formBodyCheck(base: string) {
  const k = await clientKey();
  const token = await as.mint({ cnf: { jkt: k.jkt } });
  const nonce = await nonces.current(undefined, store.epoch);
  const post = async (body: string) =>
    raw(
      base,
      '/api/form',
      {
        authorization: `DPoP ${token}`,
        dpop: await createProof(k.keyPair, {
          method: 'POST',
          url: `${base}/api/form`,
          accessToken: token,
          nonce,
        }),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body,
    );
  const res = await post(`access_token=${token}&x=1`);
  expect(res.status).toBe(400);
  expect(res.headers['www-authenticate']).toMatch(/^DPoP error="invalid_request"/);
  // the same form without the token is accepted, and the handler can still read the body
  expect((await post('x=1')).status).toBe(200);
}

describe('adapters, over real HTTP', () => {
  for (const [name, factory] of [
    ['express 5', express],
    ['express 4', express4],
  ] as const) {
    it(`${name}: dpopAuth middleware`, async () => {
      const app = (factory as typeof express)();
      app.get('/health', (_req, res) => res.send('ok'));
      app.use(express.urlencoded({ extended: false }));
      app.use('/api', expressAuth(authOptions()));
      app.post('/api/form', (req, res) => res.json({ x: req.body.x }));
      app.get('/api/me', (req, res) =>
        res.json({ sub: req.auth!.claims.sub, jkt: req.auth!.jkt, scheme: req.auth!.scheme }),
      );
      // a catch-all, so raw paths with dot segments reach the middleware (and would be served)
      app.get(/^\/api\/.*/, (_req, res) => res.json({ served: 'catch-all' }));
      const server = app.listen(0);
      await new Promise((r) => server.once('listening', r));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        await scenario(base);
        await formBodyCheck(base);
      } finally {
        server.close();
      }
    });
  }

  it('fastify 5: plugin in an encapsulated scope, and a per-route hook', async () => {
    const app = Fastify();
    app.get('/health', async () => 'ok');
    await app.register(
      async (api) => {
        await api.register(dpopAuthPlugin, authOptions());
        api.get('/me', async (request) => ({
          sub: request.auth!.claims.sub,
          jkt: request.auth!.jkt,
          scheme: request.auth!.scheme,
        }));
      },
      { prefix: '/api' },
    );
    app.get('/route-level', { preHandler: dpopAuthHook(authOptions()) }, async (request) => ({
      ok: request.auth!.scheme,
    }));
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      await scenario(base);
      expect((await fetch(`${base}/route-level`)).status).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('hono: middleware through app.request and over node:http', async () => {
    const app = new Hono<DPoPAuthEnv>();
    app.get('/health', (c) => c.text('ok'));
    app.use('/api/*', honoAuth(authOptions()));
    app.post('/api/form', async (c) => c.json({ x: (await c.req.parseBody()).x }));
    app.get('/api/me', (c) =>
      c.json({
        sub: c.get('auth').claims.sub,
        jkt: c.get('auth').jkt,
        scheme: c.get('auth').scheme,
      }),
    );
    const res = await app.request('https://api.example.com/api/me');
    expect(res.status).toBe(401);
    const { createServer } = await import('node:http');
    const server = createServer(async (req, res2) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const response = await app.fetch(
        new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers, body }),
      );
      res2.writeHead(response.status, Object.fromEntries(response.headers));
      res2.end(Buffer.from(await response.arrayBuffer()));
    });
    const base = await listen(server);
    try {
      await scenario(base, true);
      await formBodyCheck(base);
    } finally {
      server.close();
    }
  });
});

afterAll(() => {});
