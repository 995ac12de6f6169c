import { createProof, generateKeyPair as popkitKeyPair } from '@popkit/dpop-client';
import { generateProof } from 'dpop';
import * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { MemoryReplayStore, PROOF_ALGORITHMS, createProofVerifier } from '../src/index.ts';

const URL_ = 'https://rs.example.com/resource';

describe('interop: proofs from other implementations verify', () => {
  const verify = createProofVerifier({
    replay: new MemoryReplayStore(),
    algorithms: ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'],
  });

  it.each(['ES256', 'PS256', 'RS256', 'Ed25519'] as const)('panva dpop %s', async (alg) => {
    const keyPair = await popkitKeyPair(alg === 'Ed25519' ? 'EdDSA' : alg);
    const proof = await generateProof(keyPair, URL_, 'GET', undefined, 'token-x');
    const result = await verify(proof, { method: 'GET', url: URL_, accessToken: 'token-x' });
    expect(result.alg).toBe(alg); // dpop@2 writes "Ed25519" for Ed25519 keys
  });

  it('oauth4webapi DPoP handle (ES256 and EdDSA)', async () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const keyPair = await oauth.generateKeyPair(alg);
      const handle = oauth.DPoP({ client_id: 'c' }, keyPair);
      let captured: string | undefined;
      await oauth.protectedResourceRequest('token-y', 'GET', new URL(URL_), new Headers(), null, {
        DPoP: handle,
        [oauth.customFetch]: async (_url: string, init: RequestInit) => {
          captured = new Headers(init.headers).get('dpop') ?? undefined;
          return new Response('ok');
        },
      });
      const result = await verify(captured!, { method: 'GET', url: URL_, accessToken: 'token-y' });
      expect(['ES256', 'EdDSA', 'Ed25519']).toContain(result.alg);
    }
  });

  it('@popkit/dpop-client, every algorithm', async () => {
    const signable = PROOF_ALGORITHMS.filter((a) => a !== 'Ed25519'); // Ed25519 keys sign as EdDSA by default
    const all = createProofVerifier({ replay: false, algorithms: signable });
    for (const alg of signable) {
      const keyPair = await popkitKeyPair(alg);
      await all(await createProof(keyPair, { method: 'DELETE', url: URL_, accessToken: 't' }), {
        method: 'DELETE',
        url: URL_,
        accessToken: 't',
      });
    }
  });
});
