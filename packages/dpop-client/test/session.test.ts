import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '../src/index.ts';
import { DPoPSession } from '../src/session.ts';

// What the fetch and axios wrappers learn from responses is bounded and kept per origin.
const rejected = (date: Date) => ({
  status: 401,
  header: (name: string) =>
    ({ 'www-authenticate': 'DPoP error="invalid_dpop_proof"', date: date.toUTCString() })[name],
  jsonError: async () => undefined,
});
const HOUR = 3600;

describe('DPoPSession state', () => {
  it('keeps clock offsets for at most 100 origins, evicting the least recently used', async () => {
    const session = new DPoPSession(await generateKeyPair());
    const ahead = new Date(Date.now() + HOUR * 1000);
    const learn = async (origin: string) =>
      session.inspect(origin, rejected(ahead), await session.attempt('GET', `${origin}/`, origin));
    const offsetOf = async (origin: string) =>
      (await session.attempt('GET', `${origin}/`, origin)).offset;

    await learn('https://first.example');
    for (let i = 0; i < 99; i++) await learn(`https://o${i}.example`);
    expect(await offsetOf('https://first.example')).toBeGreaterThan(HOUR - 5); // read: now recent
    await learn('https://one-more.example'); // 101 origins: o0 (least recently used) goes
    expect(await offsetOf('https://o0.example')).toBe(0);
    expect(await offsetOf('https://first.example')).toBeGreaterThan(HOUR - 5);
    expect(await offsetOf('https://one-more.example')).toBeGreaterThan(HOUR - 5);
  });

  it('applies an offset of up to a day, never more, and only to the origin that sent it', async () => {
    const session = new DPoPSession(await generateKeyPair());
    const origin = 'https://as.example';
    const sent = await session.attempt('POST', `${origin}/token`, origin);
    const farDate = new Date(Date.now() + 25 * HOUR * 1000);
    expect(await session.inspect(origin, rejected(farDate), sent)).toBeUndefined();
    expect((await session.attempt('GET', `${origin}/`, origin)).offset).toBe(0);

    const dayAhead = new Date(Date.now() + 23 * HOUR * 1000);
    expect(await session.inspect(origin, rejected(dayAhead), sent)).toBe('clock_offset');
    expect((await session.attempt('GET', `${origin}/`, origin)).offset).toBeGreaterThan(
      23 * HOUR - 5,
    );
    expect(
      (await session.attempt('GET', 'https://api.example/', 'https://api.example')).offset,
    ).toBe(0);
  });
});
