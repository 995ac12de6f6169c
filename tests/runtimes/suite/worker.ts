// A Cloudflare Worker (run by workerd): the popkit API on Hono with @popkit/dpop-verifier/hono,
// and a self-test route that signs a proof with @popkit/dpop-client and verifies it in the worker.
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { MemoryReplayStore, createNonceIssuer, createProofVerifier } from '@popkit/dpop-verifier';
import type { DPoPAuthEnv } from '@popkit/dpop-verifier/hono';
import { dpopAuth } from '@popkit/dpop-verifier/hono';
import { Hono } from 'hono';

declare const __PUBLIC_URL__: string;

const app = new Hono<DPoPAuthEnv>();
app.use(
  '/api/*',
  dpopAuth({
    // tokens are "tok.<jkt>" in this test: the binding is what is exercised
    accessToken: (token) => ({ cnf: { jkt: token.slice(4) } }),
    publicUrl: __PUBLIC_URL__,
    replay: new MemoryReplayStore({ maxEntries: 10_000 }),
    nonces: createNonceIssuer({ secret: 'workerd-test-nonce-secret-32-bytes!' }),
  }),
);
app.get('/api/me', (c) => c.json({ jkt: c.get('auth').jkt }));
app.get('/self-test', async (c) => {
  const key = await generateKeyPair('ES256');
  const verify = createProofVerifier({ replay: new MemoryReplayStore() });
  const url = `${__PUBLIC_URL__}/x`;
  const proof = await createProof(key, { method: 'GET', url });
  const ok = await verify(proof, { method: 'GET', url, jkt: await thumbprint(key) });
  const replay = await verify(proof, { method: 'GET', url }).then(
    () => 'accepted',
    (e: { reason?: string }) => e.reason ?? 'error',
  );
  return c.json({ verified: ok.jkt === (await thumbprint(key)), replay });
});

export default app;
