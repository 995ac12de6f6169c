// An access token that expires mid-session: 401 invalid_token, the onTokenExpired hook, one
// retry with the new token and a new proof, one shared refresh, or ERR_DPOP_TOKEN_EXPIRED.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DPoPFetchEvent, TokenExpiredContext } from '../src/index.ts';
import {
  DPoPClientError,
  accessTokenHash,
  createDPoPFetch,
  generateKeyPair,
  serverAnswer,
} from '../src/index.ts';
import { invalidTokenChallenge, jwtExp } from '../src/token-expiry.ts';
import type { ServerControl } from './helpers/dpop-server.ts';
import { startDPoPServer } from './helpers/dpop-server.ts';

let server: ServerControl;
let keyPair: CryptoKeyPair;
/** Tokens the test server refuses as expired. */
const expiredTokens = new Set<string>();
const EXPIRED =
  'DPoP error="invalid_token", error_description="The access token has expired", algs="ES256"';

beforeAll(async () => {
  server = await startDPoPServer();
  keyPair = await generateKeyPair();
  server.refuseToken = (seen) =>
    seen.authorization !== undefined && expiredTokens.has(seen.authorization.slice(5))
      ? EXPIRED
      : undefined;
});
afterAll(() => server.close());
beforeEach(() => {
  server.seen.length = 0;
  expiredTokens.clear();
  server.rotate();
});

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: object) => `${b64({ alg: 'ES256', typ: 'at+jwt' })}.${b64(claims)}.c2ln`;
const statuses = () => server.seen.map((s) => `${s.authorization} -> ${s.outcome}`);

describe('recognising an expired token', () => {
  it('invalid_token in the DPoP challenge, else in a Bearer one; other errors are not', () => {
    expect(invalidTokenChallenge(EXPIRED)).toEqual({ description: 'The access token has expired' });
    expect(invalidTokenChallenge('Bearer realm="x", error="invalid_token"')).toEqual({});
    expect(
      invalidTokenChallenge('Bearer error="invalid_token", DPoP error="invalid_dpop_proof"'),
    ).toBeUndefined();
    expect(invalidTokenChallenge('DPoP error="insufficient_scope"')).toBeUndefined();
    expect(invalidTokenChallenge('DPoP algs="ES256"')).toBeUndefined();
    expect(invalidTokenChallenge(null)).toBeUndefined();
  });
  it('reads a JWT exp without trusting it; opaque and malformed tokens have none', () => {
    expect(jwtExp(jwt({ exp: 1_700_000_000 }))).toBe(1_700_000_000);
    expect(jwtExp(jwt({ exp: '1700000000' }))).toBeUndefined();
    expect(jwtExp('opaque-token')).toBeUndefined();
    expect(jwtExp('a.b!.c')).toBeUndefined();
    expect(jwtExp(`a.${'A'.repeat(20_000)}.c`)).toBeUndefined();
    expect(jwtExp(`a.${b64({ exp: 1 }).slice(0, -1)}x.c`)).toBeUndefined();
  });
});

describe('createDPoPFetch with an expired access token', () => {
  it('calls onTokenExpired once and retries once with the new token and a new proof', async () => {
    expiredTokens.add('old-token');
    const calls: TokenExpiredContext[] = [];
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, {
      onEvent: (e) => events.push(e),
      onTokenExpired: async (context) => {
        calls.push(context);
        return 'new-token';
      },
    });
    const res = await dpopFetch(`${server.url}/api/orders`, { accessToken: 'old-token' });
    expect(res.status).toBe(200);
    expect(statuses()).toEqual([
      'DPoP old-token -> 401', // the nonce round trip
      'DPoP old-token -> 401', // expired
      'DPoP new-token -> 200',
    ]);
    expect(server.seen[2]!.ath).toBe(await accessTokenHash('new-token'));
    expect(server.seen[2]!.jti).not.toBe(server.seen[1]!.jti);
    expect(calls).toEqual([
      {
        origin: server.url,
        url: `${server.url}/api/orders`,
        accessToken: 'old-token',
        expired: true,
        description: 'The access token has expired',
      },
    ]);
    expect(
      events.filter((e) => e.type === 'retry').map((e) => (e as { reason: string }).reason),
    ).toEqual(['use_dpop_nonce', 'token_refreshed']);
  });

  it('never loops: a new token refused again is one refresh, then ERR_DPOP_TOKEN_EXPIRED', async () => {
    expiredTokens.add('old-token').add('new-token');
    let calls = 0;
    const dpopFetch = createDPoPFetch(keyPair, {
      onTokenExpired: () => (calls++, 'new-token'),
    });
    await dpopFetch(`${server.url}/warm`); // the nonce
    server.seen.length = 0;
    const error = await dpopFetch(`${server.url}/api/orders`, { accessToken: 'old-token' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DPoPClientError);
    expect((error as DPoPClientError).code).toBe('ERR_DPOP_TOKEN_EXPIRED');
    expect((error as DPoPClientError).response!.status).toBe(401);
    expect(calls).toBe(1);
    expect(statuses()).toEqual(['DPoP old-token -> 401', 'DPoP new-token -> 401']);
  });

  it('ERR_DPOP_TOKEN_EXPIRED carries what the server said: error, description, its time, the offset', async () => {
    expiredTokens.add('old-token');
    server.skew = 600; // the server clock 10 minutes ahead
    try {
      const dpopFetch = createDPoPFetch(keyPair);
      await dpopFetch(`${server.url}/warm`); // the nonce, and the offset learned from Date
      const before = Date.now();
      const error = await dpopFetch(`${server.url}/api/orders`, {
        accessToken: 'old-token',
      }).catch((e: unknown) => e);
      expect((error as DPoPClientError).code).toBe('ERR_DPOP_TOKEN_EXPIRED');
      const answer = (error as DPoPClientError).server!;
      expect(answer).toMatchObject({
        status: 401,
        error: 'invalid_token',
        errorDescription: 'The access token has expired',
      });
      // Date has a 1 s resolution
      expect(answer.serverTime).toBeGreaterThanOrEqual(before + 600_000 - 1000);
      expect(answer.serverTime).toBeLessThanOrEqual(Date.now() + 600_000);
      expect(Math.abs(answer.clockOffset! - 600)).toBeLessThanOrEqual(1);
    } finally {
      server.skew = 0;
    }
  });

  it('serverAnswer reads any refusal: the DPoP challenge first, else another; no Date, no time', () => {
    const dated = serverAnswer(
      new Response(null, {
        status: 401,
        headers: {
          'www-authenticate':
            'Bearer error="invalid_token", DPoP error="invalid_dpop_proof", error_description="The DPoP proof htu does not match the request URL"',
          date: new Date(Date.now() - 120_000).toUTCString(),
        },
      }),
    );
    expect(dated).toMatchObject({
      status: 401,
      error: 'invalid_dpop_proof',
      errorDescription: 'The DPoP proof htu does not match the request URL',
    });
    expect(Math.abs(dated.clockOffset! + 120)).toBeLessThanOrEqual(1);
    expect(
      serverAnswer(
        new Response(null, {
          status: 403,
          headers: {
            'www-authenticate': 'Bearer error="insufficient_scope", scope="orders:write"',
          },
        }),
      ),
    ).toEqual({ status: 403, error: 'insufficient_scope' });
    expect(serverAnswer(new Response(null, { status: 503 }))).toEqual({ status: 503 });
  });

  it('without a hook, or when it returns nothing: ERR_DPOP_TOKEN_EXPIRED with the 401', async () => {
    expiredTokens.add('old-token');
    for (const options of [
      {},
      { onTokenExpired: () => undefined },
      { onTokenExpired: async () => null },
    ]) {
      server.seen.length = 0;
      const error = await createDPoPFetch(keyPair, options)(`${server.url}/api/orders`, {
        accessToken: 'old-token',
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DPoPClientError);
      expect((error as DPoPClientError).code).toBe('ERR_DPOP_TOKEN_EXPIRED');
      expect(server.seen.at(-1)!.outcome).toBe(401);
      expect(server.seen).toHaveLength(2); // nonce round trip, expired: no third request
    }
  });

  it('a JWT whose exp has passed by the server Date is expired even when the server does not say so', async () => {
    const past = jwt({ exp: Math.floor(Date.now() / 1000) - 30 });
    const future = jwt({ exp: Math.floor(Date.now() / 1000) + 3600 });
    server.refuseToken = (seen) =>
      seen.authorization?.startsWith('DPoP ') ? 'DPoP error="invalid_token"' : undefined;
    try {
      const dpopFetch = createDPoPFetch(keyPair);
      const error = await dpopFetch(`${server.url}/api/a`, { accessToken: past }).catch(
        (e: unknown) => e,
      );
      expect((error as DPoPClientError).code).toBe('ERR_DPOP_TOKEN_EXPIRED');
      // not expired, not said to be: the 401 is the application's (a revoked or foreign token)
      const res = await dpopFetch(`${server.url}/api/a`, { accessToken: future });
      expect(res.status).toBe(401);
      expect(
        await createDPoPFetch(keyPair)(`${server.url}/api/a`, { accessToken: 'opaque' }),
      ).toHaveProperty('status', 401);
      // with a hook, any invalid_token is worth one refresh; expired tells which it was
      const seen: boolean[] = [];
      const withHook = createDPoPFetch(keyPair, {
        onTokenExpired: ({ expired }) => void seen.push(expired),
      });
      expect((await withHook(`${server.url}/api/a`, { accessToken: future })).status).toBe(401);
      await withHook(`${server.url}/api/a`, { accessToken: past }).catch(() => {});
      expect(seen).toEqual([false, true]);
    } finally {
      server.refuseToken = (seen) =>
        seen.authorization !== undefined && expiredTokens.has(seen.authorization.slice(5))
          ? EXPIRED
          : undefined;
    }
  });

  it('concurrent requests refused with the same token share one refresh in flight', async () => {
    expiredTokens.add('old-token');
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const dpopFetch = createDPoPFetch(keyPair, {
      onTokenExpired: async () => {
        calls++;
        await gate;
        return 'new-token';
      },
    });
    await dpopFetch(`${server.url}/warm`);
    const all = Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        dpopFetch(`${server.url}/api/orders/${i}`, { accessToken: 'old-token' }),
      ),
    );
    await new Promise((r) => setTimeout(r, 200));
    release();
    expect((await all).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(calls).toBe(1);
    // a request sent with the old token after the refresh gets the new one without a call
    expect((await dpopFetch(`${server.url}/api/late`, { accessToken: 'old-token' })).status).toBe(
      200,
    );
    expect(calls).toBe(1);
    // a hook that fails rejects every request that waited on it, and is asked again next time
    expiredTokens.add('other');
    let fail = true;
    const flaky = createDPoPFetch(keyPair, {
      onTokenExpired: async () => {
        if (fail) throw new Error('refresh grant failed');
        return 'new-token';
      },
    });
    await expect(flaky(`${server.url}/api/x`, { accessToken: 'other' })).rejects.toThrow(
      'refresh grant failed',
    );
    fail = false;
    expect((await flaky(`${server.url}/api/x`, { accessToken: 'other' })).status).toBe(200);
  });

  it('a one-shot body is not sent again: the expiry is reported, the hook is not called', async () => {
    expiredTokens.add('old-token');
    let calls = 0;
    const dpopFetch = createDPoPFetch(keyPair, { onTokenExpired: () => (calls++, 'new-token') });
    await dpopFetch(`${server.url}/warm`);
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('x'));
        c.close();
      },
    });
    const error = await dpopFetch(`${server.url}/api/upload`, {
      method: 'POST',
      body,
      accessToken: 'old-token',
    }).catch((e: unknown) => e);
    expect((error as DPoPClientError).code).toBe('ERR_DPOP_TOKEN_EXPIRED');
    expect(calls).toBe(0);
  });

  it('rejects a hook that is not a function', () => {
    expect(() => createDPoPFetch(keyPair, { onTokenExpired: 'x' as never })).toThrow(TypeError);
  });
});
