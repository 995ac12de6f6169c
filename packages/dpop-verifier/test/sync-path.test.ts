import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProof } from '@popkit/dpop-client';
import express from 'express';
import Fastify from 'fastify';
import type { preHandlerHookHandler } from 'fastify';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpopAuth } from '../src/express/index.ts';
import { dpopAuthHook } from '../src/fastify/index.ts';
import type { DPoPAuthEnv } from '../src/hono/index.ts';
import { dpopAuth as honoAuth } from '../src/hono/index.ts';
import type { DPoPAuthOptions, ReplayStore } from '../src/index.ts';
import { DPoPError, MemoryReplayStore, createDPoPAuth, createNonceIssuer } from '../src/index.ts';
import { AUDIENCE, ISSUER, clientKey, testIssuer } from './helpers.ts';

// Steps answer synchronously when they can (node:crypto, the memory store, a token validated
// before): such a request is verified without a promise, and Express continues at once.

let as: Awaited<ReturnType<typeof testIssuer>>;
beforeAll(async () => {
  as = await testIssuer();
});

const PUBLIC = 'https://api.example.com';
const request = (token: string, proof: string, url = '/orders') => ({
  method: 'GET',
  url,
  headers: { authorization: `DPoP ${token}`, dpop: proof },
});

describe('the synchronous path', () => {
  let server: Server;
  let base: string;
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('Express continues within the middleware call once the token is known, and not before', async () => {
    const app = express();
    app.use((req, _res, next) => {
      (req as { inCall?: boolean }).inCall = true;
      next();
      (req as { inCall?: boolean }).inCall = false;
    });
    app.use(
      dpopAuth({
        accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: as.jwks as never },
        publicUrl: PUBLIC,
        replay: new MemoryReplayStore(),
      }),
    );
    app.get('/orders', (req, res) =>
      res.json({ sync: (req as { inCall?: boolean }).inCall, sub: req.auth!.claims.sub }),
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const k = await clientKey();
    const token = await as.mint({ cnf: { jkt: k.jkt } });
    const call = async () => {
      const proof = await createProof(k.keyPair, {
        method: 'GET',
        url: `${PUBLIC}/orders`,
        accessToken: token,
      });
      const response = await fetch(`${base}/orders`, {
        headers: { authorization: `DPoP ${token}`, dpop: proof },
      });
      expect(response.status).toBe(200);
      return (await response.json()) as { sync: boolean; sub: string };
    };
    // the first request verifies the token's signature with jose (asynchronous)
    expect(await call()).toEqual({ sync: false, sub: 'user-1' });
    // later ones find it validated: no promise, no microtask
    expect(await call()).toEqual({ sync: true, sub: 'user-1' });
    expect(await call()).toEqual({ sync: true, sub: 'user-1' });
  });

  // The same for the two other adapters: the handler runs within the call of the layer in
  // front of popkit when every step was synchronous, and only then.
  const sequence = async (call: (proof: string, token: string) => Promise<unknown>) => {
    const k = await clientKey();
    const token = await as.mint({ cnf: { jkt: k.jkt } });
    const once = async () =>
      call(
        await createProof(k.keyPair, {
          method: 'GET',
          url: `${PUBLIC}/orders`,
          accessToken: token,
        }),
        token,
      );
    return [await once(), await once(), await once()];
  };
  const options = (): DPoPAuthOptions => ({
    accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: as.jwks as never },
    publicUrl: PUBLIC,
    replay: new MemoryReplayStore(),
  });

  it('Fastify runs the handler within the hook chain once the token is known, and not before', async () => {
    const app = Fastify();
    const flag: preHandlerHookHandler = (request, _reply, done) => {
      (request as { inCall?: boolean }).inCall = true;
      done();
      (request as { inCall?: boolean }).inCall = false;
    };
    app.get('/orders', { preHandler: [flag, dpopAuthHook(options())] }, async (request) => ({
      sync: (request as { inCall?: boolean }).inCall,
      sub: request.auth!.claims.sub,
    }));
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const results = await sequence(async (proof, token) => {
        const response = await fetch(`${base}/orders`, {
          headers: { authorization: `DPoP ${token}`, dpop: proof },
        });
        expect(response.status).toBe(200);
        return response.json();
      });
      expect(results).toEqual([
        { sync: false, sub: 'user-1' },
        { sync: true, sub: 'user-1' },
        { sync: true, sub: 'user-1' },
      ]);
    } finally {
      await app.close();
    }
  });

  it('Hono reaches the handler within the middleware call once the token is known, and not before', async () => {
    const app = new Hono<DPoPAuthEnv & { Variables: { inCall: boolean } }>();
    app.use(async (c, next) => {
      c.set('inCall', true);
      const rest = next();
      c.set('inCall', false);
      await rest;
    });
    app.use('/orders', honoAuth(options()));
    app.get('/orders', (c) => c.json({ sync: c.get('inCall'), sub: c.get('auth').claims.sub }));
    const results = await sequence(async (proof, token) => {
      const response = await app.request(`${PUBLIC}/orders`, {
        headers: { authorization: `DPoP ${token}`, dpop: proof },
      });
      expect(response.status).toBe(200);
      return response.json();
    });
    expect(results).toEqual([
      { sync: false, sub: 'user-1' },
      { sync: true, sub: 'user-1' },
      { sync: true, sub: 'user-1' },
    ]);
  });

  it('the public verify() never throws synchronously: bad input is a rejected promise', async () => {
    const auth = createDPoPAuth({
      accessToken: () => ({ cnf: { jkt: 'x' } }),
      publicUrl: PUBLIC,
      replay: false,
    });
    let promise: Promise<unknown> | undefined;
    expect(() => (promise = auth.verify(null as never))).not.toThrow();
    await expect(promise).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
    await expect(auth.verify(request('a.b.c', 'x.y.z'))).rejects.toBeInstanceOf(DPoPError);
  });

  it('a synchronous or asynchronous hook validator, and one that throws or rejects', async () => {
    const k = await clientKey();
    const claims = { sub: 'u', cnf: { jkt: k.jkt } };
    const build = (accessToken: DPoPAuthOptions['accessToken']) =>
      createDPoPAuth({ accessToken, publicUrl: PUBLIC, replay: new MemoryReplayStore() });
    const proof = () =>
      createProof(k.keyPair, { method: 'GET', url: `${PUBLIC}/orders`, accessToken: 'tok' });
    for (const hook of [() => claims, async () => claims]) {
      await expect(build(hook).verify(request('tok', await proof()))).resolves.toMatchObject({
        claims: { sub: 'u' },
        jkt: k.jkt,
      });
    }
    const refusals = [
      () => {
        throw new Error('unknown token');
      },
      () => Promise.reject(new Error('unknown token')),
      () => 'not claims' as never,
    ];
    for (const hook of refusals) {
      await expect(build(hook).verify(request('tok', await proof()))).rejects.toMatchObject({
        code: 'invalid_token',
        status: 401,
      });
    }
  });

  it('fails closed whether the replay store throws synchronously or rejects, and detects replays either way', async () => {
    const k = await clientKey();
    const claims = { sub: 'u', cnf: { jkt: k.jkt } };
    const build = (replay: ReplayStore) =>
      createDPoPAuth({ accessToken: () => claims, publicUrl: PUBLIC, replay });
    const proof = () =>
      createProof(k.keyPair, { method: 'GET', url: `${PUBLIC}/orders`, accessToken: 'tok' });
    const broken: ReplayStore[] = [
      {
        useOnce: () => {
          throw new Error('down');
        },
      },
      { useOnce: () => Promise.reject(new Error('down')) },
    ];
    for (const store of broken) {
      await expect(build(store).verify(request('tok', await proof()))).rejects.toMatchObject({
        code: 'server_error',
        reason: 'replay_store_error',
        status: 503,
      });
    }
    const memory = new MemoryReplayStore();
    const asynchronous: ReplayStore = { useOnce: async (...args) => memory.useOnce(...args) };
    for (const store of [new MemoryReplayStore(), asynchronous]) {
      const auth = build(store);
      const once = request('tok', await proof());
      await expect(auth.verify(once)).resolves.toMatchObject({ jkt: k.jkt });
      await expect(auth.verify(once)).rejects.toMatchObject({ reason: 'replay', status: 401 });
    }
  });

  it('takes the asynchronous path with server nonces, with the same outcome', async () => {
    const k = await clientKey();
    const nonces = createNonceIssuer({ secret: 'sync-path-tests-'.padEnd(40, 'x') });
    const store = new MemoryReplayStore();
    const auth = createDPoPAuth({
      accessToken: () => ({ cnf: { jkt: k.jkt } }),
      publicUrl: PUBLIC,
      replay: store,
      nonces,
    });
    const proof = (nonce?: string) =>
      createProof(k.keyPair, {
        method: 'GET',
        url: `${PUBLIC}/orders`,
        accessToken: 'tok',
        ...(nonce ? { nonce } : {}),
      });
    await expect(auth.verify(request('tok', await proof()))).rejects.toMatchObject({
      code: 'use_dpop_nonce',
    });
    await expect(
      auth.verify(request('tok', await proof(await nonces.current(undefined, store.epoch)))),
    ).resolves.toMatchObject({ jkt: k.jkt });
  });
});
