import { createHash } from 'node:crypto';
import { createDPoPFetch, createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MinimalAuthorizationServer } from '../src/minimal.ts';
import { startMinimalAuthorizationServer } from '../src/minimal.ts';

let as: MinimalAuthorizationServer;
const basic = `Basic ${btoa('svc:secret')}`;
beforeAll(async () => {
  as = await startMinimalAuthorizationServer({
    client: { id: 'svc', secret: 'secret' },
    audience: 'https://api.example',
  });
});
afterAll(() => as.close());

describe('minimal token endpoint built on createTokenRequestVerifier', () => {
  it('issues a token bound to the proof key after the nonce round trip', async () => {
    const key = await generateKeyPair();
    const events: string[] = [];
    const dpopFetch = createDPoPFetch(key, { onEvent: (e) => events.push(e.type) });
    const res = await dpopFetch(`${as.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    const body = (await res.json()) as { access_token: string; token_type: string };
    expect(res.status).toBe(200);
    expect(body.token_type).toBe('DPoP');
    expect(decodeJwt(body.access_token).cnf).toEqual({ jkt: await thumbprint(key) });
    expect(events).toContain('retry');
  });

  it('answers bad proofs with 400 JSON, and issues Bearer tokens without DPoP', async () => {
    const key = await generateKeyPair();
    const proof = await createProof(key, { method: 'POST', url: `${as.issuer}/token` });
    const res = await fetch(`${as.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: basic,
        dpop: proof,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'use_dpop_nonce' });
    const nonce = res.headers.get('dpop-nonce')!;
    const wrongUrl = await createProof(key, { method: 'POST', url: `${as.issuer}/other`, nonce });
    const res2 = await fetch(`${as.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: basic,
        dpop: wrongUrl,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    expect([res2.status, ((await res2.json()) as { error: string }).error]).toEqual([
      400,
      'invalid_dpop_proof',
    ]);
    const bearer = await fetch(`${as.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(((await bearer.json()) as { token_type: string }).token_type).toBe('Bearer');
  });
});

describe('minimal token endpoint: CORS for the public client', () => {
  const app = 'http://127.0.0.1:5173';
  let spa: MinimalAuthorizationServer;
  beforeAll(async () => {
    spa = await startMinimalAuthorizationServer({
      client: { id: 'svc', secret: 'secret' },
      audience: 'https://api.example',
      publicClient: { id: 'spa', redirectUris: [`${app}/`] },
    });
  });
  afterAll(() => spa.close());

  it('a preflight allows DPoP; refusals and tokens expose the nonce and Date next to its own list', async () => {
    const preflight = await fetch(`${spa.issuer}/token`, {
      method: 'OPTIONS',
      headers: {
        origin: app,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'dpop, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toBe(
      'Authorization, DPoP, Content-Type',
    );
    const key = await generateKeyPair();
    const verifier = 'v'.repeat(43);
    const code = await spa.authorize({
      clientId: 'spa',
      redirectUri: `${app}/`,
      codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
      codeChallengeMethod: 'S256',
      dpopJkt: await thumbprint(key),
      subject: 'alice',
    });
    const seen: Response[] = [];
    const dpopFetch = createDPoPFetch(key, {
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        seen.push(res.clone());
        return res;
      },
    });
    const res = await dpopFetch(`${spa.issuer}/token`, {
      method: 'POST',
      headers: { origin: app },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: `${app}/`,
        code_verifier: verifier,
        client_id: 'spa',
      }),
    });
    expect(res.status).toBe(200);
    expect(seen.map((r) => r.status)).toEqual([400, 200]); // use_dpop_nonce, then the token
    for (const r of seen) {
      expect(r.headers.get('access-control-allow-origin')).toBe(app);
      expect(r.headers.get('access-control-expose-headers')).toBe(
        'X-Request-Id, DPoP-Nonce, WWW-Authenticate, Date',
      );
    }
    // another origin gets no CORS grant
    const other = await fetch(`${spa.issuer}/token`, {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
