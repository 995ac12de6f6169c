import ky from 'ky';
import { createFetch } from 'ofetch';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DPoPFetchEvent } from '../src/index.ts';
import {
  DPoPClientError,
  MemoryNonceStore,
  accessTokenHash,
  createDPoPFetch,
  generateKeyPair,
} from '../src/index.ts';
import type { ServerControl } from './helpers/dpop-server.ts';
import { startDPoPServer } from './helpers/dpop-server.ts';

let server: ServerControl;
let keyPair: CryptoKeyPair;

beforeAll(async () => {
  server = await startDPoPServer();
  keyPair = await generateKeyPair();
});
afterAll(() => server.close());
beforeEach(() => {
  server.seen.length = 0;
  server.skew = 0;
  server.alwaysDemand = false;
  server.challenge = (error) => `Bearer realm="api", DPoP error="${error}", algs="ES256 EdDSA"`;
  server.rotate();
});

const summary = () =>
  server.seen.map(
    (s) =>
      `${s.method} ${s.path} nonce=${s.nonce === undefined ? '-' : s.nonce === server.nonce ? 'current' : 'stale'} -> ${s.outcome}`,
  );

describe('createDPoPFetch against a real HTTP server', () => {
  it('learns the nonce from a 401 challenge among several, retries once, then reuses it', async () => {
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, { onEvent: (e) => events.push(e) });
    const res = await dpopFetch(`${server.url}/api/orders?page=1`, { accessToken: 'at-123' });
    expect(res.status).toBe(200);
    expect(summary()).toEqual([
      'GET /api/orders nonce=- -> 401',
      'GET /api/orders nonce=current -> 200',
    ]);
    expect(server.seen[1]!.ath).toBe(await accessTokenHash('at-123'));
    expect(server.seen[1]!.authorization).toBe('DPoP at-123');
    expect(server.seen[1]!.htu).toBe(`${server.url}/api/orders`);
    expect(events).toContainEqual({ type: 'retry', origin: server.url, reason: 'use_dpop_nonce' });

    server.seen.length = 0;
    expect((await dpopFetch(`${server.url}/api/orders`, { accessToken: 'at-123' })).status).toBe(
      200,
    );
    expect(summary()).toEqual(['GET /api/orders nonce=current -> 200']);
  });

  it('follows a rotated nonce with exactly one retry', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${server.url}/api/a`);
    server.rotate();
    server.seen.length = 0;
    expect((await dpopFetch(`${server.url}/api/a`)).status).toBe(200);
    expect(summary()).toEqual(['GET /api/a nonce=stale -> 401', 'GET /api/a nonce=current -> 200']);
  });

  it('matches the DPoP scheme case-insensitively, alone or after other challenges', async () => {
    for (const spelling of [
      (e: string) => `dpop error="${e}"`,
      (e: string) => `Basic realm="x", Bearer error="invalid_token", DPOP algs="ES256", error=${e}`,
      (e: string) => `DPoP algs="ES256 PS256",error="${e}",error_description="a, b"`,
    ]) {
      server.challenge = spelling;
      server.rotate();
      server.seen.length = 0;
      const res = await createDPoPFetch(keyPair)(`${server.url}/api/x`);
      expect(res.status).toBe(200);
      expect(server.seen).toHaveLength(2);
    }
  });

  it('never loops: a server that always demands a new nonce gets exactly two requests', async () => {
    server.alwaysDemand = true;
    const res = await createDPoPFetch(keyPair)(`${server.url}/api/loop`);
    expect(res.status).toBe(401);
    expect(server.seen).toHaveLength(2);
  });

  it('does not retry when the challenge repeats the nonce it just sent', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${server.url}/api/x`);
    server.seen.length = 0;
    server.alwaysDemand = true;
    server.rotate = () => server.nonce; // the server "demands" the same nonce again
    const res = await dpopFetch(`${server.url}/api/x`);
    expect(res.status).toBe(401);
    expect(server.seen).toHaveLength(1);
  });

  it('handles the token endpoint 400 JSON use_dpop_nonce and replays the form body', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'a b' });
    const res = await dpopFetch(`${server.url}/token`, { method: 'post', body });
    expect(res.status).toBe(200);
    expect(summary()).toEqual(['POST /token nonce=- -> 400', 'POST /token nonce=current -> 200']);
    expect(server.seen[0]!.body).toBe('grant_type=client_credentials&scope=a+b');
    expect(server.seen[1]!.body).toBe(server.seen[0]!.body);
    expect(server.seen[1]!.htm).toBe('POST');
  });

  it('learns the server clock from Date when iat is rejected, and keeps using it', async () => {
    server.skew = 600;
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, { onEvent: (e) => events.push(e) });
    await dpopFetch(`${server.url}/api/clock`); // nonce round trip first
    server.seen.length = 0;
    expect((await dpopFetch(`${server.url}/api/clock`)).status).toBe(200);
    const offsetEvent = events.find((e) => e.type === 'clock-offset');
    expect(offsetEvent).toMatchObject({ type: 'clock-offset', origin: server.url });
    expect(Math.abs((offsetEvent as { offset: number }).offset - 600)).toBeLessThanOrEqual(2);
    expect(Math.abs(server.seen.at(-1)!.iat! - (Date.now() / 1000 + 600))).toBeLessThan(5);
  });

  it('spends its single retry on the clock, then leaves the nonce challenge to the next call', async () => {
    server.skew = -900;
    const dpopFetch = createDPoPFetch(keyPair);
    const res = await dpopFetch(`${server.url}/api/both`);
    // stale iat -> invalid_dpop_proof (clock learned, one retry) -> no nonce -> use_dpop_nonce returned as is
    expect(res.status).toBe(401);
    expect(server.seen.map((s) => s.outcome)).toEqual([401, 401]);
    server.seen.length = 0;
    expect((await dpopFetch(`${server.url}/api/both`)).status).toBe(200);
    expect(summary()).toEqual(['GET /api/both nonce=current -> 200']);
  });

  it('sends a ReadableStream body once and reports ERR_DPOP_BODY_NOT_REPLAYABLE; the nonce is kept', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed'));
        c.close();
      },
    });
    const error = await dpopFetch(`${server.url}/api/upload`, {
      method: 'POST',
      body: stream,
    }).catch((e) => e);
    expect(error).toBeInstanceOf(DPoPClientError);
    expect(error.code).toBe('ERR_DPOP_BODY_NOT_REPLAYABLE');
    expect(error.response.status).toBe(401);
    expect(error.server).toMatchObject({ status: 401, error: 'use_dpop_nonce' });
    expect(server.seen).toHaveLength(1);
    const again = await dpopFetch(`${server.url}/api/upload`, {
      method: 'POST',
      body: 'retry-by-app',
    });
    expect(again.status).toBe(200);
  });

  it('replays the body of a Request input and keeps its headers', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    const req = new Request(`${server.url}/api/items`, {
      method: 'PUT',
      headers: { authorization: 'DPoP from-header', 'x-app': '1' },
      body: JSON.stringify({ a: 1 }),
    });
    const res = await dpopFetch(req);
    expect(res.status).toBe(200);
    expect(server.seen.map((s) => s.body)).toEqual(['{"a":1}', '{"a":1}']);
    expect(server.seen[1]!.ath).toBe(await accessTokenHash('from-header'));
  });

  it('honours an AbortSignal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('user left'));
    await expect(
      createDPoPFetch(keyPair)(`${server.url}/api/x`, { signal: controller.signal }),
    ).rejects.toThrow('user left');
  });

  it('is the fetch of ofetch', async () => {
    const $fetch = createFetch({ fetch: createDPoPFetch(keyPair) as typeof fetch });
    expect(await $fetch(`${server.url}/api/ofetch`, { method: 'POST', body: { o: 1 } })).toEqual({
      ok: true,
      echo: '{"o":1}',
    });
    expect(server.seen.map((s) => s.outcome)).toEqual([401, 200]);
  });

  it('wraps undici.fetch and ky', async () => {
    const viaUndici = createDPoPFetch(keyPair, { fetch: undiciFetch as never });
    expect((await viaUndici(`${server.url}/api/u`)).status).toBe(200);
    const api = ky.create({ fetch: createDPoPFetch(keyPair), retry: 0 });
    expect(await api.post(`${server.url}/api/ky`, { json: { k: 1 } }).json()).toEqual({
      ok: true,
      echo: '{"k":1}',
    });
  });

  it('keeps nonces per origin in a bounded, pluggable store', async () => {
    const store = new MemoryNonceStore({ maxEntries: 2 });
    const dpopFetch = createDPoPFetch(keyPair, { nonceStore: store });
    await dpopFetch(`${server.url}/api/x`);
    expect(store.get(server.url)).toBe(server.nonce);
    store.set('https://a.example', 'n1');
    store.set('https://b.example', 'n2');
    expect(store.size).toBe(2);
    expect(store.get(server.url)).toBeUndefined();
    expect(() => new MemoryNonceStore({ maxEntries: 0 })).toThrow(/maxEntries/);
  });

  it('ignores malformed DPoP-Nonce values', async () => {
    const store = new MemoryNonceStore();
    const dpopFetch = createDPoPFetch(keyPair, { nonceStore: store });
    server.nonce = 'bad nonce with spaces';
    const res = await dpopFetch(`${server.url}/api/x`);
    expect(res.status).toBe(401);
    expect(store.size).toBe(0);
    expect(server.seen).toHaveLength(1);
  });
});
