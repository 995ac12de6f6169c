import { describe, expect, it } from 'vitest';
import { createProof } from '@popkit/dpop-client';
import {
  DPoPConfigError,
  MemoryReplayStore,
  createDPoPAuth,
  createNonceIssuer,
  createTokenRequestVerifier,
} from '../src/index.ts';
import { clientKey } from './helpers.ts';

const T = 1_750_000_000_000;

describe('createNonceIssuer', () => {
  it('is stateless: two instances with the same secret agree, another secret does not', async () => {
    const a = createNonceIssuer({ secret: 's'.repeat(32) });
    const b = createNonceIssuer({ secret: 's'.repeat(32) });
    const c = createNonceIssuer({ secret: 't'.repeat(32) });
    const nonce = await a.current(T);
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await b.current(T)).toBe(nonce);
    expect(await b.check(nonce, T)).toEqual({
      valid: true,
      current: true,
      expiresAt: (Math.floor(T / 60000) + 3) * 60000,
    });
    expect((await c.check(nonce, T)).valid).toBe(false);
  });

  it('accepts the current step, `window` previous steps and the next one; nothing older', async () => {
    const issuer = createNonceIssuer({ secret: new Uint8Array(32).fill(7), period: 60, window: 2 });
    const at = (minutes: number) => T + minutes * 60_000;
    const nonce = await issuer.current(T);
    expect(await issuer.check(nonce, at(-1))).toMatchObject({ valid: true, current: true }); // next step, another instance slightly behind
    expect(await issuer.check(nonce, at(1))).toMatchObject({ valid: true, current: false });
    expect(await issuer.check(nonce, at(2))).toMatchObject({ valid: true, current: false });
    expect((await issuer.check(nonce, at(3))).valid).toBe(false);
    expect((await issuer.check(nonce, at(-2))).valid).toBe(false);
  });

  it('binds nonces to their audience: an authorization server nonce is refused by an API sharing the secret', async () => {
    const secret = 'shared-by-the-as-and-its-apis-xxxxxxxxxxx';
    const as = createNonceIssuer({ secret, audience: 'https://as.example.com' });
    const api = createNonceIssuer({ secret, audience: 'https://api.example.com' });
    const apiTwin = createNonceIssuer({ secret, audience: 'https://api.example.com' });
    const unbound = createNonceIssuer({ secret });
    const nonce = await as.current(T);
    expect((await api.check(nonce, T)).valid).toBe(false);
    expect((await unbound.check(nonce, T)).valid).toBe(false);
    expect((await as.check(nonce, T)).valid).toBe(true);
    expect(await apiTwin.current(T)).toBe(await api.current(T)); // instances of one server agree
    // the length prefix: no audience is a prefix-shift of another
    const ab = createNonceIssuer({ secret, audience: 'a:1' });
    const a = createNonceIssuer({ secret, audience: 'a' });
    expect(await ab.current(T)).not.toBe(await a.current(T));

    // end to end: the token endpoint's nonce, sent to the API, gets the API's own nonce
    const k = await clientKey();
    // one store (one epoch), as with a shared Redis: only the audience tells the nonces apart
    const store = new MemoryReplayStore({ maxEntries: 64 });
    const token = createTokenRequestVerifier({
      tokenEndpoint: 'https://as.example.com/token',
      replay: store,
      nonces: createNonceIssuer({ secret, audience: 'https://as.example.com' }),
    });
    const auth = createDPoPAuth({
      accessToken: () => ({ sub: 'u', cnf: { jkt: k.jkt } }),
      publicUrl: 'https://api.example.com',
      replay: store,
      nonces: createNonceIssuer({ secret, audience: 'https://api.example.com' }),
    });
    const first = await createProof(k.keyPair, {
      method: 'POST',
      url: 'https://as.example.com/token',
    });
    const challenge = await token({
      method: 'POST',
      url: '/token',
      headers: { dpop: first },
    }).catch((e: { headers: Record<string, string> }) => e);
    const asNonce = (challenge as { headers: Record<string, string> }).headers['DPoP-Nonce']!;
    expect(asNonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const proof = await createProof(k.keyPair, {
      method: 'GET',
      url: 'https://api.example.com/orders',
      accessToken: 'tok',
      nonce: asNonce,
    });
    const refused = await auth
      .verify({
        method: 'GET',
        url: '/orders',
        headers: { authorization: 'DPoP tok', dpop: proof },
      })
      .catch((e: { code: string; reason: string; headers: Record<string, string> }) => e);
    expect(refused).toMatchObject({ code: 'use_dpop_nonce', reason: 'nonce_invalid' });
    const apiNonce = (refused as { headers: Record<string, string> }).headers['DPoP-Nonce']!;
    expect(apiNonce).not.toBe(asNonce);
    const retried = await createProof(k.keyPair, {
      method: 'GET',
      url: 'https://api.example.com/orders',
      accessToken: 'tok',
      nonce: apiNonce,
    });
    await expect(
      auth.verify({
        method: 'GET',
        url: '/orders',
        headers: { authorization: 'DPoP tok', dpop: retried },
      }),
    ).resolves.toMatchObject({ jkt: k.jkt });
  });

  it('rotates secrets: the first issues, all are accepted', async () => {
    const old = createNonceIssuer({ secret: 'o'.repeat(32) });
    const rotated = createNonceIssuer({ secret: ['n'.repeat(32), 'o'.repeat(32)] });
    const fresh = createNonceIssuer({ secret: 'n'.repeat(32) });
    expect((await rotated.check(await old.current(T), T)).valid).toBe(true);
    expect(await rotated.current(T)).toBe(await fresh.current(T));
  });

  it('rejects garbage without throwing', async () => {
    const issuer = createNonceIssuer({ secret: 'x'.repeat(32) });
    for (const value of [
      '',
      'short',
      'A'.repeat(43),
      'A'.repeat(10000),
      42 as never,
      null as never,
    ]) {
      expect((await issuer.check(value, T)).valid).toBe(false);
    }
  });

  it('validates its options', () => {
    expect(() => createNonceIssuer({ secret: 'too short' })).toThrow(DPoPConfigError);
    expect(() => createNonceIssuer({ secret: new Uint8Array(31) })).toThrow(/at least 32 bytes/);
    expect(() => createNonceIssuer({ secret: [] })).toThrow(/empty/);
    expect(() => createNonceIssuer({ secret: 'x'.repeat(32), period: 0 })).toThrow(/period/);
    expect(() => createNonceIssuer({ secret: 'x'.repeat(32), window: 11 })).toThrow(/window/);
  });
});
