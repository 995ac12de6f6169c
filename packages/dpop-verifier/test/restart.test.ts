import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { describe, expect, it } from 'vitest';
import {
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createProofVerifier,
  createTokenRequestVerifier,
} from '../src/index.ts';

const URL_ = 'https://api.example.com/orders';

async function failure(p: Promise<unknown>): Promise<DPoPError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(DPoPError);
  return e as DPoPError;
}

/** The documented default construction, "restarted": a new store, the same secret. */
describe('a restart does not reopen replays', () => {
  it('without nonces: a proof accepted before the restart is refused after it (iat before the start)', async () => {
    const key = await generateKeyPair();
    const proof = await createProof(key, { method: 'GET', url: URL_ });
    const before = createProofVerifier({ replay: new MemoryReplayStore() });
    await expect(before(proof, { method: 'GET', url: URL_ })).resolves.toMatchObject({
      jkt: await thumbprint(key),
    });
    await new Promise((r) => setTimeout(r, 1100)); // the process restarts a second later
    const after = createProofVerifier({ replay: new MemoryReplayStore() });
    const e = await failure(after(proof, { method: 'GET', url: URL_ }));
    expect([e.status, e.code, e.reason]).toEqual([401, 'invalid_dpop_proof', 'iat_before_restart']);
    // a new proof (the client signs one per request) is accepted at once
    const fresh = await createProof(key, { method: 'GET', url: URL_ });
    await expect(after(fresh, { method: 'GET', url: URL_ })).resolves.toBeDefined();
  });

  it('with nonces: a nonce issued before the restart is refused with a fresh one, and the retry succeeds', async () => {
    const secret = 'restart-tests-nonce-secret-0123456789';
    const key = await generateKeyPair();
    const beforeStore = new MemoryReplayStore();
    const nonces = createNonceIssuer({ secret });
    const before = createProofVerifier({ replay: beforeStore, nonces });
    const e0 = await failure(
      before(await createProof(key, { method: 'GET', url: URL_ }), { method: 'GET', url: URL_ }),
    );
    const nonce = e0.headers['DPoP-Nonce']!;
    const proof = await createProof(key, { method: 'GET', url: URL_, nonce });
    await expect(before(proof, { method: 'GET', url: URL_ })).resolves.toBeDefined();
    // restart: same secret, same clock step, new store
    const afterStore = new MemoryReplayStore();
    const after = createProofVerifier({
      replay: afterStore,
      nonces: createNonceIssuer({ secret }),
    });
    const e = await failure(after(proof, { method: 'GET', url: URL_ }));
    expect([e.status, e.code, e.reason]).toEqual([401, 'use_dpop_nonce', 'nonce_invalid']);
    const next = e.headers['DPoP-Nonce']!;
    expect(next).not.toBe(nonce);
    const retry = await createProof(key, { method: 'GET', url: URL_, nonce: next });
    await expect(after(retry, { method: 'GET', url: URL_ })).resolves.toBeDefined();
    // (and the old store's own nonces keep working while it runs)
    expect(beforeStore.epoch).not.toBe(afterStore.epoch);
  });

  it('at a token endpoint too: a captured token request replayed after the restart is refused', async () => {
    const tokenEndpoint = 'https://as.example.com/token';
    const key = await generateKeyPair();
    const post = (dpop: string) => ({
      method: 'POST',
      url: tokenEndpoint,
      headers: { dpop },
    });
    const proof = await createProof(key, { method: 'POST', url: tokenEndpoint });
    const before = createTokenRequestVerifier({ tokenEndpoint, replay: new MemoryReplayStore() });
    await expect(before(post(proof))).resolves.toMatchObject({ jkt: await thumbprint(key) });
    await new Promise((r) => setTimeout(r, 1100));
    const after = createTokenRequestVerifier({ tokenEndpoint, replay: new MemoryReplayStore() });
    const e = await failure(after(post(proof)));
    expect([e.status, e.reason]).toEqual([400, 'iat_before_restart']);
  });

  it('a proof made in the same second the store started is accepted (iat is in whole seconds)', async () => {
    const key = await generateKeyPair();
    const store = new MemoryReplayStore();
    const verify = createProofVerifier({ replay: store });
    const proof = await createProof(key, { method: 'GET', url: URL_ });
    await expect(verify(proof, { method: 'GET', url: URL_ })).resolves.toBeDefined();
  });
});

describe('a restart with a nonce issuer of your own', () => {
  it('an issuer that ignores the epoch still gets the since rule: a pre-restart proof is refused', async () => {
    const key = await generateKeyPair();
    // a stateless issuer of the app's own: one fixed nonce (it knows nothing of epochs)
    const own = {
      period: 60,
      current: async () => 'N'.repeat(43),
      check: async (nonce: string) => ({
        valid: nonce === 'N'.repeat(43),
        current: true,
        expiresAt: Date.now() + 120_000,
      }),
    };
    const proof = await createProof(key, { method: 'GET', url: URL_, nonce: 'N'.repeat(43) });
    const before = createProofVerifier({ replay: new MemoryReplayStore(), nonces: own });
    await expect(before(proof, { method: 'GET', url: URL_ })).resolves.toBeDefined();
    await new Promise((r) => setTimeout(r, 1100));
    const after = createProofVerifier({ replay: new MemoryReplayStore(), nonces: own });
    const e = await failure(after(proof, { method: 'GET', url: URL_ }));
    expect([e.code, e.reason]).toEqual(['use_dpop_nonce', 'iat_before_restart']);
  });
});
