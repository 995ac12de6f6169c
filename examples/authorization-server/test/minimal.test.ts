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
