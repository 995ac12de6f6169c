import { generateProof } from 'dpop';
import { EmbeddedJWK, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { createProof, generateKeyPair, normalizeHtu } from '../src/index.ts';

describe('interop with panva dpop', () => {
  it.each([
    ['ES256', undefined],
    ['EdDSA', 'Ed25519'],
    ['PS256', undefined],
    ['RS256', undefined],
  ] as const)(
    '%s proofs have the same header and claim shape as dpop.generateProof',
    async (alg, edHeader) => {
      const keyPair = await generateKeyPair(alg);
      const htu = normalizeHtu('https://RS.example.com:443/api/./x?y=1');
      const theirs = await generateProof(keyPair, htu, 'POST', 'nonce-1', 'access-token');
      const ours = await createProof(
        keyPair,
        { method: 'POST', url: htu, nonce: 'nonce-1', accessToken: 'access-token' },
        edHeader ? { ed25519Alg: edHeader } : undefined,
      );
      const [th, oh] = [decodeProtectedHeader(theirs), decodeProtectedHeader(ours)];
      expect(Object.keys(oh).sort()).toEqual(Object.keys(th).sort());
      expect(oh.jwk).toEqual(th.jwk);
      expect(oh.alg).toBe(th.alg);
      expect(oh.typ).toBe(th.typ);
      const [tc, oc] = [decodeJwt(theirs), decodeJwt(ours)];
      expect(Object.keys(oc).sort()).toEqual(Object.keys(tc).sort());
      for (const claim of ['htm', 'htu', 'ath', 'nonce'] as const)
        expect(oc[claim]).toBe(tc[claim]);
      expect(Math.abs(oc.iat! - tc.iat!)).toBeLessThanOrEqual(1);
      // each verifies with the same verifier settings
      for (const proof of [theirs, ours])
        await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [oh.alg!] });
    },
  );
});
