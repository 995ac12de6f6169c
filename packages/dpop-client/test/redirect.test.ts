import axios from 'axios';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withDPoP } from '../src/axios/index.ts';
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

// Two real HTTP servers on 127.0.0.1, on two ports: two origins.
let a: ServerControl;
let b: ServerControl;
let keyPair: CryptoKeyPair;
const DAYS_200 = 200 * 24 * 3600;

beforeAll(async () => {
  [a, b] = await Promise.all([startDPoPServer(), startDPoPServer()]);
  keyPair = await generateKeyPair();
});
afterAll(() => Promise.all([a.close(), b.close()]));
beforeEach(() => {
  for (const s of [a, b]) {
    s.seen.length = 0;
    s.skew = 0;
    s.redirect = () => undefined;
    s.preAuthRedirect = () => undefined;
    s.checkHtu = true;
    s.extraHeaders = {};
    s.rotate();
  }
});

const to = (status: number, location: string) => () => ({ status, location });
const nowSec = () => Date.now() / 1000;

describe('createDPoPFetch follows redirects itself, one proof per hop', () => {
  it('307 to another origin: no DPoP and no Authorization there; its nonce and 200-days-off Date do not touch the first origin', async () => {
    const store = new MemoryNonceStore();
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, {
      nonceStore: store,
      onEvent: (e) => events.push(e),
    });
    a.redirect = (seen) =>
      seen.path === '/api/moved' ? { status: 307, location: `${b.url}/api/x` } : undefined;
    b.skew = DAYS_200;
    b.extraHeaders = { 'dpop-nonce': 'nonce-from-b' };

    const res = await dpopFetch(`${a.url}/api/moved`, {
      method: 'PUT',
      body: 'payload',
      accessToken: 'tok-a',
      headers: { cookie: 'session=1', 'x-app': 'kept' },
    });
    // B saw the request (307 keeps method and body) but no proof, token or cookie.
    expect(b.seen).toHaveLength(1);
    expect(b.seen[0]).toMatchObject({ method: 'PUT', body: 'payload', dpop: false });
    expect(b.seen[0]!.authorization).toBeUndefined();
    expect(b.seen[0]!.cookie).toBeUndefined();
    expect(res.status).toBe(401); // B's own answer, returned as is
    expect(res.url).toBe(`${b.url}/api/x`);
    expect(events).toContainEqual({ type: 'redirect', origin: a.url, to: b.url });
    expect(events.filter((e) => e.type === 'clock-offset')).toEqual([]);

    // Nothing learned from B: A's nonce stays, no nonce stored for B, no clock offset for A.
    expect(store.get(a.url)).toBe(a.nonce);
    expect(store.get(b.url)).toBeUndefined();
    a.seen.length = 0;
    expect((await dpopFetch(`${a.url}/api/orders`, { accessToken: 'tok-a' })).status).toBe(200);
    expect(a.seen).toHaveLength(1);
    expect(Math.abs(a.seen[0]!.iat! - nowSec())).toBeLessThan(5);
  });

  it('307 on the same origin: a new proof for the new URL, same method, body and token', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    a.redirect = (seen) =>
      seen.path === '/api/old' ? { status: 307, location: '/api/new?x=1' } : undefined;
    const res = await dpopFetch(`${a.url}/api/old`, {
      method: 'POST',
      body: JSON.stringify({ n: 1 }),
      headers: { 'content-type': 'application/json' },
      accessToken: 'tok-a',
    });
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${a.url}/api/new?x=1`);
    const [, old, moved] = a.seen; // [0] is the nonce round trip
    expect(old).toMatchObject({ path: '/api/old', htu: `${a.url}/api/old`, outcome: 307 });
    expect(moved).toMatchObject({
      method: 'POST',
      path: '/api/new',
      htm: 'POST',
      htu: `${a.url}/api/new`,
      body: '{"n":1}',
      contentType: 'application/json',
      authorization: 'DPoP tok-a',
      nonce: a.nonce,
      outcome: 200,
    });
    expect(moved!.ath).toBe(await accessTokenHash('tok-a'));
    expect(moved!.jti).not.toBe(old!.jti);
  });

  it('a nonce challenge on a later hop is retried there, with the new nonce', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${a.url}/api/warm`);
    a.seen.length = 0;
    a.redirect = (seen) => {
      if (seen.path !== '/api/old') return undefined;
      a.rotate(); // the next hop carries a nonce that just went stale
      return { status: 308, location: '/api/new' };
    };
    const res = await dpopFetch(`${a.url}/api/old`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(a.seen.map((s) => `${s.method} ${s.path} ${s.htu} -> ${s.outcome}`)).toEqual([
      `DELETE /api/old ${a.url}/api/old -> 308`,
      `DELETE /api/new ${a.url}/api/new -> 401`,
      `DELETE /api/new ${a.url}/api/new -> 200`,
    ]);
    expect(a.seen[2]!.nonce).toBe(a.nonce);
  });

  it('303 after a POST: the next hop is a GET without body, signed with htm GET', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    a.redirect = (seen) =>
      seen.path === '/api/submit' ? { status: 303, location: `${a.url}/api/result` } : undefined;
    const res = await dpopFetch(`${a.url}/api/submit`, {
      method: 'POST',
      body: new URLSearchParams({ q: '1' }),
      accessToken: 'tok-a',
    });
    expect(res.status).toBe(200);
    expect(a.seen.at(-1)).toMatchObject({
      method: 'GET',
      htm: 'GET',
      htu: `${a.url}/api/result`,
      body: '',
      authorization: 'DPoP tok-a',
    });
    expect(a.seen.at(-1)!.contentType).toBeUndefined();
  });

  it('301/302 turn a POST into a GET, keep a PUT; 308 keeps a POST', async () => {
    for (const [status, method, expected] of [
      [301, 'POST', 'GET'],
      [302, 'POST', 'GET'],
      [302, 'PUT', 'PUT'],
      [308, 'POST', 'POST'],
    ] as const) {
      a.seen.length = 0;
      a.redirect = (seen) =>
        seen.path === '/api/from' ? { status, location: '/api/to' } : undefined;
      const res = await createDPoPFetch(keyPair)(`${a.url}/api/from`, { method, body: 'b' });
      expect(res.status).toBe(200);
      expect(a.seen.at(-1)).toMatchObject({
        method: expected,
        htm: expected,
        htu: `${a.url}/api/to`,
        body: expected === 'GET' ? '' : 'b',
      });
    }
  });

  it('a redirect loop ends after 20 redirects with ERR_DPOP_REDIRECT, every hop freshly signed', async () => {
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, { onEvent: (e) => events.push(e) });
    await dpopFetch(`${a.url}/api/warm`); // the nonce round trip, out of the way
    a.seen.length = 0;
    a.redirect = to(307, '/api/loop');
    const error = await dpopFetch(`${a.url}/api/loop`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DPoPClientError);
    expect((error as DPoPClientError).code).toBe('ERR_DPOP_REDIRECT');
    expect((error as DPoPClientError).response?.status).toBe(307);
    expect((error as DPoPClientError).server?.status).toBe(307);
    expect(a.seen).toHaveLength(21); // the request and 20 redirects followed
    expect(a.seen.every((s) => s.outcome === 307)).toBe(true);
    expect(new Set(a.seen.map((s) => s.jti)).size).toBe(21);
    expect(events.filter((e) => e.type === 'redirect')).toHaveLength(20);
  });

  it('a loop between two origins is bounded too, and the proof never crosses', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${a.url}/api/warm`);
    a.seen.length = 0;
    a.preAuthRedirect = to(302, `${b.url}/api/pong`);
    b.preAuthRedirect = to(302, `${a.url}/api/ping`);
    const error = await dpopFetch(`${a.url}/api/ping`, { accessToken: 'tok-a' }).catch(
      (e: unknown) => e,
    );
    expect((error as DPoPClientError).code).toBe('ERR_DPOP_REDIRECT');
    expect(a.seen.length + b.seen.length).toBe(21);
    expect(a.seen[0]!.dpop).toBe(true); // only the very first request carries a proof
    for (const s of [...a.seen.slice(1), ...b.seen]) {
      expect(s.dpop).toBe(false);
      expect(s.authorization).toBeUndefined();
    }
  });

  it('after leaving the origin, coming back gets no proof and no token either (A -> B -> A)', async () => {
    a.redirect = (seen) =>
      seen.path === '/api/out' ? { status: 307, location: `${b.url}/api/bounce` } : undefined;
    b.preAuthRedirect = to(307, `${a.url}/api/back`);
    const res = await createDPoPFetch(keyPair)(`${a.url}/api/out`, { accessToken: 'tok-a' });
    expect(res.status).toBe(401); // A refuses the unsigned request
    expect(a.seen.map((s) => [s.path, s.dpop, s.authorization])).toEqual([
      ['/api/out', true, 'DPoP tok-a'], // nonce challenge
      ['/api/out', true, 'DPoP tok-a'], // 307 to B
      ['/api/back', false, undefined],
    ]);
  });

  it("respects the caller's redirect: 'manual' (3xx returned) and 'error' (rejects)", async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${a.url}/api/warm`);
    a.redirect = to(307, `${b.url}/api/x`);
    const manual = await dpopFetch(`${a.url}/api/moved`, { redirect: 'manual' });
    expect(manual.status).toBe(307);
    expect(manual.headers.get('location')).toBe(`${b.url}/api/x`);
    await expect(dpopFetch(`${a.url}/api/moved`, { redirect: 'error' })).rejects.toThrow(TypeError);
    const request = new Request(`${a.url}/api/moved`, { redirect: 'manual' });
    expect((await dpopFetch(request)).status).toBe(307);
    expect(b.seen).toEqual([]);
  });

  it('a streamed body is not replayed on 307 (ERR_DPOP_BODY_NOT_REPLAYABLE) but a 303 continues as GET', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${a.url}/api/warm`);
    const stream = () =>
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('streamed'));
          c.close();
        },
      });
    a.redirect = (seen) =>
      seen.path === '/api/upload' ? { status: 307, location: '/api/elsewhere' } : undefined;
    const error = await dpopFetch(`${a.url}/api/upload`, { method: 'POST', body: stream() }).catch(
      (e: unknown) => e,
    );
    expect((error as DPoPClientError).code).toBe('ERR_DPOP_BODY_NOT_REPLAYABLE');
    expect((error as DPoPClientError).response?.status).toBe(307);
    expect((error as DPoPClientError).server?.status).toBe(307);
    expect(a.seen.at(-1)).toMatchObject({ path: '/api/upload', body: 'streamed' });

    a.redirect = (seen) =>
      seen.path === '/api/upload' ? { status: 303, location: '/api/done' } : undefined;
    const res = await dpopFetch(`${a.url}/api/upload`, { method: 'POST', body: stream() });
    expect(res.status).toBe(200);
    expect(a.seen.at(-1)).toMatchObject({ path: '/api/done', method: 'GET', htm: 'GET' });
  });

  it('refuses a Location that is not http(s) or carries userinfo', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${a.url}/api/warm`);
    for (const location of [
      'ftp://127.0.0.1/x',
      'javascript:alert(1)',
      `http://u:p@127.0.0.1:1/`,
    ]) {
      a.redirect = to(302, location);
      await expect(dpopFetch(`${a.url}/api/x`)).rejects.toMatchObject({
        code: 'ERR_DPOP_REDIRECT',
      });
    }
    expect(b.seen).toEqual([]);
  });

  it('a redirect without Location is returned as is', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    await dpopFetch(`${a.url}/api/warm`);
    const noLocation: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      await res.body?.cancel();
      return new Response('moved', { status: 302 });
    };
    const res = await createDPoPFetch(keyPair, { fetch: noLocation })(`${a.url}/api/x`);
    expect(res.status).toBe(302);
    expect(await res.text()).toBe('moved');
  });

  it('fails closed when the fetch hides a redirect it was asked to return (opaque redirect)', async () => {
    const opaque = async () =>
      ({ type: 'opaqueredirect', status: 0, url: '', headers: new Headers(), body: null }) as never;
    await expect(
      createDPoPFetch(keyPair, { fetch: opaque })(`${a.url}/api/x`),
    ).rejects.toMatchObject({ code: 'ERR_DPOP_REDIRECT' });
  });
});

describe('a fetch that sends requests elsewhere (a gateway, a test double)', () => {
  it('still learns the nonce: only a response marked redirected is checked against the origin', async () => {
    const viaGateway = (input: string | URL | Request, init?: RequestInit) =>
      fetch(String(input).replace('https://api.example', a.url), init);
    const dpopFetch = createDPoPFetch(keyPair, { fetch: viaGateway });
    a.checkHtu = false; // the proof is for the public URL
    const res = await dpopFetch('https://api.example/api/x');
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${a.url}/api/x`);
    expect(a.seen.map((s) => s.outcome)).toEqual([401, 200]);
  });
});

describe('where the runtime follows redirects (browsers)', () => {
  const g = globalThis as { document?: unknown };
  beforeEach(() => {
    g.document = {}; // what createDPoPFetch sees in a browser window
  });
  afterEach(() => {
    delete g.document;
  });

  it('lets fetch follow, and learns nothing from the origin it landed on', async () => {
    const store = new MemoryNonceStore();
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, {
      nonceStore: store,
      onEvent: (e) => events.push(e),
    });
    a.redirect = (seen) =>
      seen.path === '/api/moved' ? { status: 307, location: `${b.url}/api/x` } : undefined;
    b.skew = DAYS_200;
    b.extraHeaders = { 'dpop-nonce': 'nonce-from-b' };
    // undici follows as a browser would after B's CORS preflight allowed the DPoP header:
    // the proof for A reaches B (the token does not), B rejects it with its own nonce and clock.
    const res = await dpopFetch(`${a.url}/api/moved`, { accessToken: 'tok-a' });
    expect(res.status).toBe(401);
    expect(res.url).toBe(`${b.url}/api/x`);
    expect(b.seen).toHaveLength(1);
    expect(b.seen[0]!.authorization).toBeUndefined();
    expect(events.filter((e) => e.type === 'clock-offset' || e.type === 'retry')).toEqual([
      { type: 'retry', origin: a.url, reason: 'use_dpop_nonce' }, // A's own challenge, before
    ]);
    expect(store.get(a.url)).toBe(a.nonce);
    expect(store.get(b.url)).toBeUndefined();
    a.seen.length = 0;
    expect((await dpopFetch(`${a.url}/api/orders`)).status).toBe(200);
    expect(Math.abs(a.seen[0]!.iat! - nowSec())).toBeLessThan(5);
  });
});

describe('clock offsets are sane and per origin', () => {
  it('a Date more than a day off is not applied', async () => {
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, { onEvent: (e) => events.push(e) });
    await dpopFetch(`${a.url}/api/warm`);
    a.skew = 2 * 24 * 3600;
    a.seen.length = 0;
    const res = await dpopFetch(`${a.url}/api/x`);
    expect(res.status).toBe(401);
    expect(a.seen).toHaveLength(1); // no retry with an absurd offset
    expect(events.filter((e) => e.type === 'clock-offset')).toEqual([]);
  });

  it('an offset learned from one origin applies to that origin only', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    a.skew = 3600;
    expect((await dpopFetch(`${a.url}/api/x`)).status).toBe(401); // clock retry spent
    expect((await dpopFetch(`${a.url}/api/x`)).status).toBe(200);
    expect(Math.abs(a.seen.at(-1)!.iat! - (nowSec() + 3600))).toBeLessThan(5);
    expect((await dpopFetch(`${b.url}/api/x`)).status).toBe(200);
    expect(Math.abs(b.seen.at(-1)!.iat! - nowSec())).toBeLessThan(5);
  });
});

describe('withDPoP (axios) follows redirects itself, one proof per hop', () => {
  for (const order of ['before', 'after'] as const) {
    it(`an interceptor that sets Authorization on every request (registered ${order} withDPoP) does not put it back on the cross-origin hop`, async () => {
      const api = axios.create({ validateStatus: () => true });
      let requests = 0;
      const setToken = (config: any) => {
        requests++;
        config.headers.Authorization = 'DPoP tok-a';
        return config;
      };
      if (order === 'before') api.interceptors.request.use(setToken);
      withDPoP(api, keyPair);
      if (order === 'after') api.interceptors.request.use(setToken);
      const responses: number[] = [];
      api.interceptors.response.use((response) => {
        responses.push(response.status);
        return response;
      });
      a.redirect = (seen) =>
        seen.path === '/api/moved' ? { status: 307, location: `${b.url}/api/x` } : undefined;
      const res = await api.get(`${a.url}/api/moved`);
      expect(res.status).toBe(401); // B's own answer to a request without proof or token
      expect(b.seen.map((s) => [s.path, s.dpop, s.authorization])).toEqual([
        ['/api/x', false, undefined],
      ]);
      expect(a.seen.at(-1)).toMatchObject({
        path: '/api/moved',
        authorization: 'DPoP tok-a',
        ath: await accessTokenHash('tok-a'),
        outcome: 307,
      });
      expect(requests).toBe(1); // request interceptors run once per call, as with follow-redirects
      expect(responses).toEqual([401]); // and response interceptors see the final response only
    });
  }

  it("axios' fetch adapter (resolved by name) follows the same way: nothing crosses to B", async () => {
    const api = axios.create({ adapter: 'fetch', validateStatus: () => true });
    api.interceptors.request.use((config) => {
      config.headers.Authorization = 'DPoP tok-a';
      return config;
    });
    withDPoP(api, keyPair);
    a.redirect = (seen) =>
      seen.path === '/api/moved'
        ? { status: 308, location: '/api/same' }
        : seen.path === '/api/same'
          ? { status: 307, location: `${b.url}/api/x` }
          : undefined;
    const res = await api.post(`${a.url}/api/moved`, 'payload');
    expect(res.status).toBe(401);
    expect(a.seen.slice(1).map((s) => [s.path, s.htu, s.body, s.authorization, s.outcome])).toEqual(
      [
        ['/api/moved', `${a.url}/api/moved`, 'payload', 'DPoP tok-a', 308],
        ['/api/same', `${a.url}/api/same`, 'payload', 'DPoP tok-a', 307],
      ],
    );
    expect(b.seen.map((s) => [s.method, s.body, s.dpop, s.authorization])).toEqual([
      ['POST', 'payload', false, undefined],
    ]);
  });

  it('response interceptors see one response for a redirected call, in either order, and no 3xx error', async () => {
    const api = axios.create({ baseURL: a.url });
    const calls: string[] = [];
    const count = (name: string) => [
      (response: any) => {
        calls.push(`${name} ${response.status}`);
        return response;
      },
      (error: any) => {
        calls.push(`${name} error ${error?.response?.status}`);
        throw error;
      },
    ];
    api.interceptors.response.use(...count('before'));
    withDPoP(api, keyPair);
    api.interceptors.response.use(...count('after'));
    a.redirect = (seen) =>
      seen.path === '/api/old'
        ? { status: 307, location: '/api/mid' }
        : seen.path === '/api/mid'
          ? { status: 302, location: '/api/new' }
          : undefined;
    const res = await api.get('/api/old', { accessToken: 'tok-a' } as never);
    expect(res.status).toBe(200);
    expect(res.config.url).toBe('/api/old'); // the caller's config, as axios gives it
    expect(a.seen.map((s) => `${s.path} ${s.outcome}`)).toEqual([
      '/api/old 401',
      '/api/old 307',
      '/api/mid 302',
      '/api/new 200',
    ]);
    expect(calls).toEqual(['before 200', 'after 200']);
  });

  it('307 to another origin: no DPoP, Authorization, Cookie or default params there; nothing learned from it', async () => {
    const store = new MemoryNonceStore();
    const api = axios.create({ params: { api_key: 'secret' }, validateStatus: () => true });
    withDPoP(api, keyPair, { nonceStore: store });
    a.redirect = (seen) =>
      seen.path === '/api/moved' ? { status: 307, location: `${b.url}/api/x?q=1` } : undefined;
    b.skew = DAYS_200;
    b.extraHeaders = { 'dpop-nonce': 'nonce-from-b' };
    const res = await api.put(`${a.url}/api/moved`, 'payload', {
      headers: { Authorization: 'DPoP tok-a', Cookie: 'session=1' },
    });
    expect(res.status).toBe(401);
    expect(b.seen).toHaveLength(1);
    expect(b.seen[0]).toMatchObject({ method: 'PUT', body: 'payload', dpop: false, query: 'q=1' });
    expect(b.seen[0]!.authorization).toBeUndefined();
    expect(b.seen[0]!.cookie).toBeUndefined();
    expect(a.seen.map((s) => [s.outcome, s.query])).toEqual([
      [401, 'api_key=secret'],
      [307, 'api_key=secret'],
    ]);
    expect(store.get(a.url)).toBe(a.nonce);
    expect(store.get(b.url)).toBeUndefined();
    a.seen.length = 0;
    expect((await api.get(`${a.url}/api/orders`)).status).toBe(200);
    expect(a.seen).toHaveLength(1);
    expect(Math.abs(a.seen[0]!.iat! - nowSec())).toBeLessThan(5);
  });

  it('an instance-wide Authorization default is dropped cross-origin too', async () => {
    const api = axios.create({ validateStatus: () => true });
    api.defaults.headers.common.Authorization = 'DPoP tok-default';
    withDPoP(api, keyPair);
    a.redirect = to(302, `${b.url}/api/x`);
    await api.get(`${a.url}/api/moved`);
    expect(a.seen.at(-1)!.authorization).toBe('DPoP tok-default');
    expect(b.seen.map((s) => [s.dpop, s.authorization])).toEqual([[false, undefined]]);
  });

  it('307 on the same origin: a new proof for the new URL; 303 turns a POST into a signed GET', async () => {
    const api = axios.create({ baseURL: a.url });
    withDPoP(api, keyPair);
    a.redirect = (seen) =>
      seen.path === '/api/old'
        ? { status: 307, location: '/api/new' }
        : seen.path === '/api/submit'
          ? { status: 303, location: `${a.url}/api/result` }
          : undefined;
    const moved = await api.post('/api/old', { n: 1 }, { accessToken: 'tok-a' } as never);
    expect(moved.status).toBe(200);
    const [, old, next] = a.seen;
    expect(next).toMatchObject({
      method: 'POST',
      htm: 'POST',
      htu: `${a.url}/api/new`,
      body: '{"n":1}',
      authorization: 'DPoP tok-a',
      nonce: a.nonce,
    });
    expect(next!.jti).not.toBe(old!.jti);

    a.seen.length = 0;
    const result = await api.post('/api/submit', new URLSearchParams({ q: '1' }));
    expect(result.status).toBe(200);
    expect(a.seen.map((s) => [s.method, s.htm, s.htu, s.body, s.contentType])).toEqual([
      [
        'POST',
        'POST',
        `${a.url}/api/submit`,
        'q=1',
        'application/x-www-form-urlencoded;charset=utf-8',
      ],
      ['GET', 'GET', `${a.url}/api/result`, '', undefined],
    ]);
  });

  it("a loop stops at the caller's maxRedirects; maxRedirects: 0 returns the 3xx", async () => {
    const api = axios.create({ baseURL: a.url });
    withDPoP(api, keyPair);
    await api.get('/api/warm');
    a.seen.length = 0;
    a.redirect = to(307, '/api/loop');
    await expect(api.get('/api/loop', { maxRedirects: 3 })).rejects.toMatchObject({
      code: 'ERR_DPOP_REDIRECT',
    });
    expect(a.seen).toHaveLength(4);
    expect(new Set(a.seen.map((s) => s.jti)).size).toBe(4);

    a.seen.length = 0;
    await expect(api.get('/api/loop')).rejects.toMatchObject({ code: 'ERR_DPOP_REDIRECT' });
    expect(a.seen).toHaveLength(22); // axios' default: 21 redirects

    a.seen.length = 0;
    await expect(api.get('/api/loop', { maxRedirects: 0 })).rejects.toMatchObject({
      response: { status: 307 },
    });
    expect(a.seen).toHaveLength(1);
  });

  it('beforeRedirect is called before each hop and can stop it; sensitiveHeaders are dropped cross-origin', async () => {
    const api = axios.create({ validateStatus: () => true });
    withDPoP(api, keyPair);
    a.redirect = to(307, `${b.url}/api/x`);
    const calls: Array<{ href: string; statusCode: number; dpop: unknown }> = [];
    await api.get(`${a.url}/api/moved`, {
      headers: { 'X-Api-Key': 'k' },
      sensitiveHeaders: ['X-Api-Key'],
      beforeRedirect: (options: any, response: any) => {
        calls.push({
          href: options.href,
          statusCode: response.statusCode,
          dpop: options.headers.DPoP,
        });
      },
    } as never);
    expect(calls).toEqual([{ href: `${b.url}/api/x`, statusCode: 307, dpop: undefined }]);
    expect(b.seen).toHaveLength(1);

    b.seen.length = 0;
    const stop = new Error('not there');
    await expect(
      api.get(`${a.url}/api/moved`, {
        beforeRedirect: () => {
          throw stop;
        },
      }),
    ).rejects.toBe(stop);
    expect(b.seen).toEqual([]);
  });
});
