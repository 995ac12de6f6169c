import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { accessTokenSha256 } from '../src/token-hash.ts';

const expected = (token: string) => createHash('sha256').update(token).digest('base64url');

describe('accessTokenSha256 (RFC 9449 §4.2 ath)', () => {
  it('gives each token its own hash, also tokens of one length that differ in one character', async () => {
    // RFC 9449 §7.1 example token and its ath
    const rfc = 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU';
    expect(await accessTokenSha256(rfc)).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
    const a = `${'a'.repeat(700)}x`;
    const b = `${'a'.repeat(700)}y`;
    const c = `y${'a'.repeat(700)}`;
    for (const token of [a, a, b, a, c, c, b, rfc, a]) {
      expect(await accessTokenSha256(token)).toBe(expected(token));
    }
  });
});
