// The server clock learned from `Date`: strictly parsed (RFC 9110 §5.6.7), and used when a
// server refuses a stale iat with its current nonce (popkit's verifier with nonces does).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DPoPFetchEvent } from '../src/index.ts';
import { createDPoPFetch, generateKeyPair } from '../src/index.ts';
import { parseHttpDate } from '../src/http-date.ts';
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
  server.staleIat = 'invalid_dpop_proof';
  server.extraHeaders = {};
  server.rotate();
});

describe('parseHttpDate', () => {
  const ms = Date.UTC(1994, 10, 6, 8, 49, 37);
  it('reads the three formats of RFC 9110 §5.6.7', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(ms);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(ms);
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(ms);
    expect(parseHttpDate(new Date(1_800_000_000_000).toUTCString())).toBe(1_800_000_000_000);
  });
  it('ignores anything else, without guessing', () => {
    for (const garbage of [
      '',
      'now',
      '0',
      '1700000000',
      '2026',
      'Sun, 06 Nov 1994', // no time: Date.parse says local midnight
      'Sun, 06 Nov 1994 08:49:37 GMT+0100',
      'Sun, 06 Nov 1994 08:49:37 PST',
      'Sun, 06 Nov 1994 08:49:37',
      'Mon, 06 Nov 1994 08:49:37 GMT', // wrong weekday
      'Sun, 31 Nov 1994 08:49:37 GMT', // no such day
      'Sun, 06 Nov 1994 24:00:00 GMT',
      '1994-11-06T08:49:37Z',
      new Date(ms).toString(),
      `Sun, 06 Nov 1994 08:49:37 GMT${' '.repeat(100)}`,
      'x'.repeat(100_000),
    ]) {
      expect([garbage.slice(0, 40), parseHttpDate(garbage)]).toEqual([
        garbage.slice(0, 40),
        undefined,
      ]);
    }
    expect(parseHttpDate(undefined)).toBeUndefined();
    expect(parseHttpDate(42)).toBeUndefined();
  });
});

describe('createDPoPFetch and the server clock', () => {
  it('a stale iat answered use_dpop_nonce with the nonce just sent: the clock is learned, one retry', async () => {
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, { onEvent: (e) => events.push(e) });
    server.staleIat = 'use_dpop_nonce';
    expect((await dpopFetch(`${server.url}/api/a`)).status).toBe(200); // the nonce, in sync
    server.skew = 600; // the server's clock moves (or ours did)
    server.seen.length = 0;
    events.length = 0;
    expect((await dpopFetch(`${server.url}/api/a`)).status).toBe(200);
    expect(server.seen.map((s) => s.outcome)).toEqual([401, 200]);
    expect(events.filter((e) => e.type === 'retry')).toEqual([
      { type: 'retry', origin: server.url, reason: 'clock_offset' },
    ]);
    expect(server.seen[0]!.nonce).toBe(server.seen[1]!.nonce);
  });

  it('the same at a token endpoint (400 JSON use_dpop_nonce): the token request uses the offset', async () => {
    const dpopFetch = createDPoPFetch(keyPair);
    server.staleIat = 'use_dpop_nonce';
    const body = 'grant_type=client_credentials';
    expect((await dpopFetch(`${server.url}/token`, { method: 'POST', body })).status).toBe(200);
    server.skew = -600;
    server.seen.length = 0;
    expect((await dpopFetch(`${server.url}/token`, { method: 'POST', body })).status).toBe(200);
    expect(server.seen.map((s) => s.outcome)).toEqual([400, 200]);
    expect(Math.abs(server.seen[1]!.iat! - (Date.now() / 1000 - 600))).toBeLessThan(5);
  });

  it('a Date that is not an HTTP-date teaches nothing and spends no retry', async () => {
    const events: DPoPFetchEvent[] = [];
    const dpopFetch = createDPoPFetch(keyPair, { onEvent: (e) => events.push(e) });
    // a date without a time: Date.parse reads local midnight, hours from the real time
    const today = new Date().toUTCString().slice(0, 16);
    server.extraHeaders = { date: today };
    server.skew = 600;
    const res = await dpopFetch(`${server.url}/api/a`);
    expect(res.status).toBe(401);
    expect(server.seen).toHaveLength(1);
    expect(events.filter((e) => e.type === 'clock-offset' || e.type === 'retry')).toEqual([]);
  });
});
