import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { inspect } from 'node:util';
import { createProof } from '@popkit/dpop-client';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { dpopAuth as expressAuth } from '../src/express/index.ts';
import { dpopAuthPlugin } from '../src/fastify/index.ts';
import type { DPoPAuthEnv } from '../src/hono/index.ts';
import { dpopAuth as honoAuth } from '../src/hono/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthOutcome, DPoPAuthOptions, JwtAccessTokenOptions } from '../src/index.ts';
import { DPoPError, MemoryReplayStore, createDPoPAuth } from '../src/index.ts';
import { AUDIENCE, ISSUER, URL_, clientKey } from './helpers.ts';

// A real issuer on 127.0.0.1 whose JWKS endpoint can answer, fail (500), hang, refuse
// connections, answer garbage and rotate its key: the faults of production, against a real
// verifier, counting what reaches the issuer.

type Mode = 'ok' | '500' | 'hang' | 'garbage' | 'huge';

interface Issuer {
  url: string;
  mode: Mode;
  requests: number;
  /** Signs with the current key (or a named one). */
  mint(
    claims?: Record<string, unknown>,
    kid?: string,
    header?: Record<string, unknown>,
  ): Promise<string>;
  /** A new current key, published from now on (the old one is dropped). */
  rotate(): Promise<string>;
  /** Closes the listening socket (connections are refused) or opens it again. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

async function startIssuer(): Promise<Issuer> {
  const keys = new Map<string, CryptoKey>();
  let published: Record<string, unknown>[] = [];
  let current = '';
  const rotate = async () => {
    const pair = await generateKeyPair('ES256');
    current = `k${keys.size + 1}`;
    keys.set(current, pair.privateKey);
    published = [{ ...(await exportJWK(pair.publicKey)), kid: current, alg: 'ES256', use: 'sig' }];
    return current;
  };
  await rotate();
  const hanging: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  const state: Issuer = {
    url: '',
    mode: 'ok',
    requests: 0,
    mint: (claims = {}, kid = current, header = {}) =>
      new SignJWT({
        sub: 'user-1',
        iss: ISSUER,
        aud: AUDIENCE,
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 300,
        ...claims,
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid, ...header })
        .sign(keys.get(kid) ?? keys.get(current)!),
    rotate,
    down: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
    },
    up: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r())),
    close: async () => {
      for (const res of hanging) res.destroy();
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((_req, res) => {
    state.requests++;
    if (state.mode === '500') return res.writeHead(500).end('oops');
    if (state.mode === 'hang') return void hanging.push(res);
    if (state.mode === 'garbage') return res.writeHead(200).end('<html>not json</html>');
    if (state.mode === 'huge')
      return res.writeHead(200).end(JSON.stringify({ keys: published, pad: 'x'.repeat(300_000) }));
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ keys: published }));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}/jwks`;
  return state;
}

let k: Awaited<ReturnType<typeof clientKey>>;
beforeAll(async () => {
  k = await clientKey();
});

const issuers: Issuer[] = [];
afterAll(async () => {
  for (const issuer of issuers) await issuer.close();
});

async function setup(
  jwt: Partial<JwtAccessTokenOptions> = {},
  more: Partial<DPoPAuthOptions> = {},
) {
  const issuer = await startIssuer();
  issuers.push(issuer);
  const outcomes: AuthOutcome[] = [];
  const auth = createDPoPAuth({
    accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: issuer.url, ...jwt },
    publicUrl: 'https://api.example.com',
    replay: new MemoryReplayStore({ maxEntries: 10_000 }),
    onResult: (o) => outcomes.push(o),
    ...more,
  });
  const call = async (token: string) => {
    const dpop = await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token });
    try {
      await auth.verify({
        method: 'GET',
        url: '/orders',
        headers: { authorization: `DPoP ${token}`, dpop },
      });
      return { status: 200, reason: 'accepted', retryAfter: undefined as string | undefined };
    } catch (e) {
      if (!(e instanceof DPoPError)) throw e;
      return {
        status: e.status,
        reason: e.reason as string,
        retryAfter: e.headers['Retry-After'],
        error: e,
      };
    }
  };
  return { issuer, auth, call, outcomes, bound: { cnf: { jkt: k.jkt } } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('JWKS faults: an issuer outage is a 503, never a 401, and costs the issuer little', () => {
  it('JWKS 500, hanging, unreachable or garbage before any key is known: 503 with Retry-After', async () => {
    const { issuer, call, bound } = await setup({ jwksTimeout: 300, jwksMaxBackoff: 1 });
    const token = await issuer.mint(bound);
    for (const mode of ['500', 'hang', 'garbage', 'huge'] as const) {
      issuer.mode = mode;
      await sleep(1100); // past the backoff of the previous failure
      const started = Date.now();
      const result = await call(token);
      expect([mode, result.status, result.reason]).toEqual([mode, 503, 'jwks_unavailable']);
      expect(Number(result.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Date.now() - started).toBeLessThan(2000); // a hanging issuer: the timeout
    }
    await issuer.down();
    await sleep(1100);
    expect(await call(token)).toMatchObject({ status: 503, reason: 'jwks_unavailable' });
    await issuer.up();
    issuer.mode = 'ok';
    await sleep(1100);
    expect(await call(token)).toMatchObject({ status: 200 });
  });

  it('a flood of unknown kids while the JWKS answers 500 reaches the issuer once per backoff', async () => {
    const { issuer, call, bound } = await setup(); // the defaults: backoff 2 s, 4 s, 8 s…
    expect((await call(await issuer.mint(bound))).status).toBe(200); // keys fetched
    issuer.mode = '500';
    issuer.requests = 0;
    const started = Date.now();
    const statuses = new Map<string, number>();
    let n = 0;
    while (Date.now() - started < 6000) {
      const forged = await issuer.mint(bound, 'k1', { kid: `made-up-${n++}` });
      const { status, reason } = await call(forged);
      statuses.set(`${status} ${reason}`, (statuses.get(`${status} ${reason}`) ?? 0) + 1);
      await sleep(20);
    }
    console.log(
      `unknown-kid flood against a failing JWKS: ${n} requests in 6 s, ${issuer.requests} reached the issuer`,
    );
    // fetch at 0 s (fails: backoff 2 s), at >= 2 s (backoff 4 s), next not before 6 s
    expect(issuer.requests).toBeGreaterThanOrEqual(1);
    expect(issuer.requests).toBeLessThanOrEqual(3);
    expect(n).toBeGreaterThan(100);
    // unknown kids while the issuer is down cannot be told apart from new keys: 503, retryable
    for (const key of statuses.keys())
      expect(key).toMatch(/^(503 jwks_unavailable|401 token_unknown_key)$/);
  });

  it('keys already known keep working while the JWKS is down (stale-if-error), then 503, then recover', async () => {
    const { issuer, call, bound } = await setup({
      jwksMaxAge: 1,
      jwksStaleIfError: 3,
      jwksMaxBackoff: 1,
    });
    const token = await issuer.mint(bound);
    expect((await call(token)).status).toBe(200);
    await issuer.down();
    const seen: Array<[number, number, string]> = [];
    const started = Date.now();
    while (Date.now() - started < 5500) {
      // a new token each time under the known key: the claims cache does not help
      const { status, reason } = await call(await issuer.mint(bound));
      seen.push([Date.now() - started, status, reason]);
      await sleep(100);
    }
    const failedAt = seen.find(([, status]) => status !== 200);
    // accepted for maxAge + staleIfError = 4 s after the last good fetch, then 503
    expect(failedAt).toBeDefined();
    expect(failedAt![0]).toBeGreaterThan(3500);
    expect(failedAt![0]).toBeLessThan(4700);
    expect(seen.filter(([at]) => at < 3500).every(([, status]) => status === 200)).toBe(true);
    expect(
      seen.filter(([at]) => at > 4700).every(([, s, r]) => s === 503 && r === 'jwks_unavailable'),
    ).toBe(true);
    await issuer.up();
    await sleep(1100);
    const recoveredAt = Date.now();
    let status = 0;
    while (status !== 200 && Date.now() - recoveredAt < 3000) {
      status = (await call(await issuer.mint(bound))).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
    console.log(
      `stale-if-error: first refusal ${failedAt![0]} ms after the outage began (maxAge 1 s + staleIfError 3 s); recovered ${Date.now() - recoveredAt} ms after the issuer was back and its backoff over`,
    );
    expect(Date.now() - recoveredAt).toBeLessThan(1500);
  });

  it('a new kid is fetched on its first token, with no refusal (defaults)', async () => {
    const { issuer, call, bound } = await setup();
    expect((await call(await issuer.mint(bound))).status).toBe(200);
    issuer.requests = 0;
    await issuer.rotate(); // right after the fetch: the case jose's 30 s cooldown refused
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => (await call(await issuer.mint(bound))).status),
    );
    expect(results.every((s) => s === 200)).toBe(true);
    expect(issuer.requests).toBe(1); // the twenty shared one fetch
    // made-up kids right after cost at most one fetch per interval (2 s)
    for (let i = 0; i < 30; i++) {
      const forged = await issuer.mint(bound, undefined, { kid: `x-${i}` });
      expect(await call(forged)).toMatchObject({ status: 401, reason: 'token_unknown_key' });
    }
    expect(issuer.requests).toBeLessThanOrEqual(2);
  });

  it('routine refreshes happen in the background: no request waits for a slow JWKS', async () => {
    const { issuer, call, bound } = await setup({ jwksMaxAge: 1, jwksTimeout: 2000 });
    expect((await call(await issuer.mint(bound))).status).toBe(200);
    await sleep(1100);
    issuer.mode = 'hang';
    const started = Date.now();
    expect((await call(await issuer.mint(bound))).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(500);
  });
});

describe('precise reasons, one challenge text per reason, no claims in a logged error', () => {
  it('expired, not yet valid, audience, issuer, type, signature, unknown key, malformed', async () => {
    const { issuer, call, outcomes, bound } = await setup({ jwksUnknownKeyInterval: 0 });
    const other = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      issuer.mint({ ...bound, ...claims }, undefined, header);
    const cases: Array<[string, Promise<string> | string]> = [
      ['token_expired', sign({ exp: now - 60 })],
      ['token_not_yet_valid', sign({ nbf: now + 600 })],
      ['token_audience', sign({ aud: 'https://other.example.com' })],
      ['token_issuer', sign({ iss: 'https://evil.example.com' })],
      ['token_type', sign({}, { typ: 'JWT' })],
      [
        'token_signature',
        new SignJWT({ ...bound })
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime('5m')
          .sign(other.privateKey),
      ],
      ['token_unknown_key', sign({}, { kid: 'nobody' })],
      ['token_malformed', 'not.a.jwt'],
    ];
    for (const [reason, token] of cases) {
      const result = await call(await token);
      expect([reason, result.status, result.reason]).toEqual([reason, 401, reason]);
      expect(outcomes.at(-1)).toMatchObject({ outcome: 'rejected', reason, code: 'invalid_token' });
    }
    const expired = await call(await sign({ exp: now - 60 }));
    expect(expired.error!.headers['WWW-Authenticate']).toMatch(
      /error="invalid_token", error_description="The access token expired"/,
    );
  });

  it('util.inspect of a refusal shows no token, no claim and no key', async () => {
    const { issuer, call, bound } = await setup();
    const secretClaim = 'claim-value-that-must-not-leak';
    const token = await issuer.mint({
      ...bound,
      exp: Math.floor(Date.now() / 1000) - 60,
      secretClaim,
    });
    const { error } = await call(token);
    expect(error).toBeInstanceOf(DPoPError);
    const printed = inspect(error, { depth: Infinity, showHidden: true });
    expect(printed).toContain('token_expired');
    expect(printed).toContain('ERR_JWT_EXPIRED'); // the cause keeps jose's code
    for (const leak of [secretClaim, token.split('.')[1]!.slice(0, 20), 'user-1', k.jkt]) {
      expect(printed).not.toContain(leak);
    }
  });
});

describe('the same outage through Express, Fastify and Hono on 127.0.0.1', () => {
  it('answers 503 with Retry-After and no challenge, then 200 once the issuer is back', async () => {
    const issuer = await startIssuer();
    issuers.push(issuer);
    issuer.mode = '500';
    const options = (): DPoPAuthOptions => ({
      accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: issuer.url, jwksMaxBackoff: 1 },
      dangerouslyTrustRequestUrl: true, // servers on ephemeral 127.0.0.1 ports (tests only)
      replay: new MemoryReplayStore({ maxEntries: 1000 }),
    });
    const e = express();
    e.use(expressAuth(options()));
    e.get('/orders', (_req, res) => res.json({ ok: true }));
    const f = Fastify();
    await f.register(dpopAuthPlugin, options());
    f.get('/orders', async () => ({ ok: true }));
    const h = new Hono<DPoPAuthEnv>();
    h.use('/orders', honoAuth(options()));
    h.get('/orders', (c) => c.json({ ok: true }));
    const expressServer = e.listen(0, '127.0.0.1');
    await new Promise((r) => expressServer.once('listening', r));
    const fastifyBase = await f.listen({ port: 0, host: '127.0.0.1' });
    const honoServer = serve({ fetch: h.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => honoServer.once('listening', r));
    const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;
    const bases = {
      express: `http://127.0.0.1:${port(expressServer)}`,
      fastify: fastifyBase,
      hono: `http://127.0.0.1:${port(honoServer)}`,
    };
    try {
      const token = await issuer.mint({ cnf: { jkt: k.jkt } });
      const get = async (base: string) =>
        fetch(`${base}/orders`, {
          headers: {
            authorization: `DPoP ${token}`,
            dpop: await createProof(k.keyPair, {
              method: 'GET',
              url: `${base}/orders`,
              accessToken: token,
            }),
          },
        });
      for (const [name, base] of Object.entries(bases)) {
        const response = await get(base);
        expect([name, response.status]).toEqual([name, 503]);
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(response.headers.get('www-authenticate')).toBeNull();
        expect(response.headers.get('cache-control')).toBe('no-store');
      }
      issuer.mode = 'ok';
      await sleep(1100);
      for (const [name, base] of Object.entries(bases)) {
        expect([name, (await get(base)).status]).toEqual([name, 200]);
      }
    } finally {
      await new Promise((r) => expressServer.close(r));
      await f.close();
      await new Promise((r) => honoServer.close(r));
    }
  });
});
