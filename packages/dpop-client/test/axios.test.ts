import axios from 'axios';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withDPoP } from '../src/axios/index.ts';
import { accessTokenHash, generateKeyPair } from '../src/index.ts';
import type { ServerControl } from './helpers/dpop-server.ts';
import { startDPoPServer } from './helpers/dpop-server.ts';

let server: ServerControl;
let keyPair: CryptoKeyPair;
beforeAll(async () => {
  server = await startDPoPServer();
  keyPair = await generateKeyPair('EdDSA');
});
afterAll(() => server.close());
beforeEach(() => {
  server.seen.length = 0;
  server.alwaysDemand = false;
  server.rotate();
});

describe('@popkit/dpop-client/axios', () => {
  it('signs requests, retries once on a 401 nonce challenge, and reuses the nonce', async () => {
    const api = axios.create({ baseURL: server.url });
    withDPoP(api, keyPair);
    const res = await api.get('/api/orders?x=1', { accessToken: 'tok-a' } as never);
    expect(res.status).toBe(200);
    expect(server.seen.map((s) => s.outcome)).toEqual([401, 200]);
    expect(server.seen[1]!.ath).toBe(await accessTokenHash('tok-a'));
    expect(server.seen[1]!.htu).toBe(`${server.url}/api/orders`);
    server.seen.length = 0;
    await api.get('/api/orders', { headers: { Authorization: 'DPoP tok-a' } });
    expect(server.seen.map((s) => s.outcome)).toEqual([200]);
  });

  it('retries a token request answered with 400 JSON use_dpop_nonce, same body', async () => {
    const api = axios.create();
    withDPoP(api, keyPair);
    const res = await api.post(
      `${server.url}/token`,
      new URLSearchParams({ grant_type: 'client_credentials' }),
    );
    expect(res.status).toBe(200);
    expect(server.seen.map((s) => [s.outcome, s.body])).toEqual([
      [400, 'grant_type=client_credentials'],
      [200, 'grant_type=client_credentials'],
    ]);
  });

  it('interceptors run once for a nonce-retried call and see only the final 200', async () => {
    const api = axios.create({ baseURL: server.url });
    const calls: string[] = [];
    api.interceptors.request.use((config) => {
      calls.push('request before');
      return config;
    });
    api.interceptors.response.use(
      (response) => {
        calls.push(`before ${response.status}`);
        return response;
      },
      (error) => {
        calls.push(`before error ${error?.response?.status}`);
        throw error;
      },
    );
    withDPoP(api, keyPair);
    api.interceptors.request.use((config) => {
      calls.push('request after');
      return config;
    });
    api.interceptors.response.use((response) => {
      calls.push(`after ${response.status}`);
      return response;
    });
    const res = await api.get('/api/orders', { accessToken: 'tok-a' } as never);
    expect(res.status).toBe(200);
    expect(server.seen.map((s) => s.outcome)).toEqual([401, 200]);
    expect(calls).toEqual(['request after', 'request before', 'before 200', 'after 200']);
    calls.length = 0;
    server.seen.length = 0;
    server.rotate(); // the stored nonce is stale: a 400 use_dpop_nonce, then the retry
    const token = await api.post('/token', new URLSearchParams({ grant_type: 'x' }));
    expect(token.data).toEqual({ ok: true, echo: 'grant_type=x' });
    expect(server.seen.map((s) => s.outcome)).toEqual([400, 200]);
    expect(calls).toEqual(['request after', 'request before', 'before 200', 'after 200']);
  });

  it('a response interceptor that sends error.config again gets one proof per request, not two', async () => {
    const api = axios.create({ baseURL: server.url });
    withDPoP(api, keyPair);
    let resent = false;
    api.interceptors.response.use(undefined, (error) => {
      if (resent) throw error;
      resent = true;
      return api.request(error.config);
    });
    server.alwaysDemand = true;
    const error = await api.get('/api/again').catch((e: unknown) => e);
    expect(error).toMatchObject({ response: { status: 401 }, config: { url: '/api/again' } });
    // each call: the request and its one nonce retry; a second DPoP wrapper would double that
    expect(server.seen.map((s) => [s.path, s.outcome])).toEqual(Array(4).fill(['/api/again', 401]));
    expect(new Set(server.seen.map((s) => s.jti)).size).toBe(4);
  });

  it('does not loop and surfaces the axios error; eject removes the interceptors', async () => {
    const api = axios.create({ baseURL: server.url });
    const eject = withDPoP(api, keyPair);
    server.alwaysDemand = true;
    await expect(api.get('/api/loop')).rejects.toMatchObject({ response: { status: 401 } });
    expect(server.seen).toHaveLength(2);
    eject();
    server.seen.length = 0;
    await expect(api.get('/api/loop')).rejects.toMatchObject({ response: { status: 401 } });
    expect(server.seen[0]!.htm).toBeUndefined(); // no proof any more
  });
});
