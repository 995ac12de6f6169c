import { describe, expect, it } from 'vitest';
import { DPoPConfigError, createNonceIssuer } from '../src/index.ts';

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
