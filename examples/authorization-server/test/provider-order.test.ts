// What oidc-provider 9 (the example AS, provider.ts) does with a captured token request replayed:
// it checks DPoP proofs itself (popkit is not in its token endpoint), so the order is its own.
// The refresh_token grant checks the proof's jti before reuse detection and rotation; the
// authorization_code grant consumes the code, revoking the grant on reuse, before it checks the
// jti. These tests pin both facts, which provider.ts and the READMEs state.
import type { FetchLike } from '@popkit/dpop-client';
import { createDPoPFetch, generateKeyPair } from '@popkit/dpop-client';
import type { DemoPki } from '@popkit/example-shared/pki';
import { createTestPki } from '@popkit/example-shared/pki';
import { fetchTrusting } from '@popkit/example-shared/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spaLogin } from '../../demo/src/spa-login.ts';
import type { AuthorizationServer } from '../src/provider.ts';
import { SPA_CLIENT_ID, startAuthorizationServer } from '../src/provider.ts';

const RESOURCE = 'https://api.example';
const REDIRECT_URI = 'http://127.0.0.1/callback';
let as: AuthorizationServer;
let trusting: FetchLike;
/** oidc-provider's reasons (`error_detail`, never sent to the client) and revocations. */
const events: string[] = [];

beforeAll(async () => {
  const test = await createTestPki();
  const pki: DemoPki = {
    dir: '', // in memory: provider.ts reads the CA and the server certificate only
    caPem: test.ca.certPem,
    server: test.server,
    serviceP12: new Uint8Array(),
    serviceP12Password: '',
    other: test.clientB,
  };
  trusting = fetchTrusting(pki.caPem) as FetchLike;
  as = await startAuthorizationServer({ pki, resource: RESOURCE, spaRedirectUris: [REDIRECT_URI] });
  as.provider.on('grant.error', (_ctx, error: { error_detail?: string }) =>
    events.push(`error: ${error.error_detail}`),
  );
  as.provider.on('grant.revoked', () => events.push('grant revoked'));
});
afterAll(() => as.close());

interface Captured {
  url: string;
  headers: Headers;
  body: string;
}
/** The trusting fetch, recording every token request as an eavesdropper would. */
function wiretap() {
  const sent: Captured[] = [];
  const tapped: FetchLike = (input, init) => {
    if (String(input).endsWith('/token'))
      sent.push({
        url: String(input),
        headers: new Headers(init?.headers),
        body: String(init?.body ?? ''),
      });
    return trusting(input, init);
  };
  return { sent, fetch: tapped };
}
const replay = (c: Captured) =>
  trusting(c.url, { method: 'POST', headers: c.headers, body: new URLSearchParams(c.body) });
const answer = async (res: Response) => ({
  status: res.status,
  ...((await res.json()) as { error?: string; refresh_token?: string }),
});

async function signIn(fetchImpl: FetchLike) {
  const key = await generateKeyPair();
  const tokens = await spaLogin({
    issuer: as.issuer,
    clientId: SPA_CLIENT_ID,
    redirectUri: REDIRECT_URI,
    resource: RESOURCE,
    key,
    fetch: fetchImpl,
  });
  const dpopFetch = createDPoPFetch(key, { fetch: fetchImpl });
  const refresh = (refreshToken: string) =>
    dpopFetch(`${as.issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: SPA_CLIENT_ID,
      }),
    }).then(answer);
  return { tokens, refresh };
}

describe('oidc-provider 9 and a captured token request replayed', () => {
  it('refresh_token: the replay is refused by its jti check before the token is touched; the victim refreshes on', async () => {
    const tap = wiretap();
    const victim = await signIn(tap.fetch);
    const first = await victim.refresh(victim.tokens.refreshToken);
    expect(first.status).toBe(200);
    events.length = 0;
    expect(await answer(await replay(tap.sent.at(-1)!))).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
    expect(events).toEqual(['error: DPoP proof JWT Replay detected']);
    expect((await victim.refresh(first.refresh_token!)).status).toBe(200);
  });

  it('authorization_code: the replay reaches the consumed code first, and the grant is revoked', async () => {
    const tap = wiretap();
    const victim = await signIn(tap.fetch);
    const exchange = tap.sent.at(-1)!;
    expect(exchange.body).toContain('grant_type=authorization_code');
    events.length = 0;
    expect(await answer(await replay(exchange))).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
    expect(events).toEqual(['grant revoked', 'error: authorization code already consumed']);
    // the victim's refresh token went with it (oidc-provider revokes a reused code's grant)
    expect(await victim.refresh(victim.tokens.refreshToken)).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
  });
});
