// The MCP pieces of the verifier without the SDK: `requiredScopes` (403 insufficient_scope),
// `scope` and `resource_metadata` on challenges, the options' validation, `requireDPoPAuth`'s
// AuthInfo on `req.auth` and popkit's result on `req.dpop`, and `dpopResourceMetadata`.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDPoPFetch } from '@popkit/dpop-client';
import express from 'express';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthOutcome, DPoPAuthOptions } from '../src/index.ts';
import { DPoPConfigError, DPoPError, MemoryReplayStore, createDPoPAuth } from '../src/index.ts';
import { dpopResourceMetadata, requireDPoPAuth } from '../src/mcp/index.ts';
import { AUDIENCE, ISSUER, clientKey, testIssuer } from './helpers.ts';

let as: Awaited<ReturnType<typeof testIssuer>>;
const METADATA = 'https://api.example.com/.well-known/oauth-protected-resource';

const options = (extra: Partial<DPoPAuthOptions> = {}): DPoPAuthOptions => ({
  accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: as.jwks as never },
  replay: new MemoryReplayStore(),
  dangerouslyTrustRequestUrl: true, // servers on ephemeral 127.0.0.1 ports (tests only)
  ...extra,
});

beforeAll(async () => {
  as = await testIssuer();
});

async function refusal(promise: Promise<unknown>): Promise<DPoPError> {
  const e = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(DPoPError);
  return e as DPoPError;
}

describe('createDPoPAuth: requiredScopes and resourceMetadata', () => {
  it('refuses a token without the scopes 403 insufficient_scope, after its proof, naming them', async () => {
    const auth = createDPoPAuth(
      options({ requiredScopes: ['read', 'write'], resourceMetadata: METADATA }),
    );
    const k = await clientKey();
    const token = await as.mint({ cnf: { jkt: k.jkt }, scope: 'read' });
    let seen: Headers | undefined;
    const dpopFetch = createDPoPFetch(k.keyPair, {
      fetch: async (input, init) => {
        seen = new Headers(init?.headers);
        return new Response(null);
      },
    });
    await dpopFetch(`${AUDIENCE}/mcp`, { accessToken: token });
    const request = {
      method: 'GET',
      url: `${AUDIENCE}/mcp`,
      headers: { authorization: seen!.get('authorization')!, dpop: seen!.get('dpop')! },
    };
    const e = await refusal(auth.verify(request));
    expect([e.status, e.code, e.reason]).toEqual([403, 'insufficient_scope', 'insufficient_scope']);
    expect(e.headers['WWW-Authenticate']).toBe(
      `DPoP error="insufficient_scope", error_description="${e.message}", scope="read write", ` +
        `resource_metadata="${METADATA}", algs="ES256 EdDSA Ed25519 PS256 RS256"`,
    );
    // the proof was checked and recorded first: sent again it is a replay, not a scope question
    const again = await refusal(auth.verify(request));
    expect(again.reason).toBe('replay');
  });

  it('accepts a token with the scopes (scope or scp) and reports AuthInfo members', async () => {
    const auth = createDPoPAuth(options({ requiredScopes: ['read'], allowUnboundBearer: true }));
    const unbound = await as.mint({ scope: 'read other' });
    const result = await auth.verify({
      method: 'GET',
      url: '/x',
      headers: { authorization: `Bearer ${unbound}` },
    });
    expect(result).toMatchObject({ clientId: 'c1', scopes: ['read', 'other'] });
    expect(result.expiresAt).toBeGreaterThan(Date.now() / 1000);
    const scp = await as.mint({ scope: undefined, scp: ['read'] });
    const viaScp = await auth.verify({
      method: 'GET',
      url: '/x',
      headers: { authorization: `Bearer ${scp}` },
    });
    expect(viaScp.scopes).toEqual(['read']);
    // no credentials: the challenge still names the scope and, with Bearer open, on both schemes
    const bare = await refusal(auth.verify({ method: 'GET', url: '/x', headers: {} }));
    expect(bare.headers['WWW-Authenticate']).toBe(
      'DPoP scope="read", algs="ES256 EdDSA Ed25519 PS256 RS256", Bearer scope="read"',
    );
  });

  it('validates the new options', () => {
    const bad = (extra: Record<string, unknown>) => () =>
      createDPoPAuth(options(extra as Partial<DPoPAuthOptions>));
    expect(bad({ requiredScopes: 'read' })).toThrow(DPoPConfigError);
    expect(bad({ requiredScopes: ['has space'] })).toThrow(DPoPConfigError);
    expect(bad({ requiredScopes: ['quote"'] })).toThrow(DPoPConfigError);
    expect(bad({ resourceMetadata: 'not a url' })).toThrow(DPoPConfigError);
    expect(bad({ resourceMetadata: 'https://x/"' })).toThrow(DPoPConfigError);
    expect(bad({ resourceMetadata: 'ftp://x/' })).toThrow(DPoPConfigError);
    expect(() =>
      requireDPoPAuth({ ...options(), resourceMetadataUrl: METADATA, resourceMetadata: METADATA }),
    ).toThrow(DPoPConfigError);
    expect(() =>
      requireDPoPAuth({ ...options(), expectedResource: 'https://x' as unknown as URL }),
    ).toThrow(DPoPConfigError);
    expect(() => requireDPoPAuth({ ...options(), requiredScope: ['x'] } as never)).toThrow(
      /did you mean "requiredScopes"/,
    );
  });
});

describe('requireDPoPAuth: what onResult is told is what the client was answered', () => {
  it('a token the SDK rules refuse (no exp, another resource) is reported refused, never accepted', async () => {
    const outcomes: AuthOutcome[] = [];
    const app = express();
    const common = options({ onResult: (o) => outcomes.push(o) });
    app.get('/mcp', requireDPoPAuth({ ...common, expectedResource: new URL(AUDIENCE) }), (_q, r) =>
      r.json({}),
    );
    app.get(
      '/other',
      requireDPoPAuth({ ...common, expectedResource: new URL('https://elsewhere.example') }),
      (_q, r) => r.json({}),
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const k = await clientKey();
      const dpopFetch = createDPoPFetch(k.keyPair);
      const good = await as.mint({ cnf: { jkt: k.jkt } });
      const noExp = await new SignJWT({ client_id: 'c1', cnf: { jkt: k.jkt } })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'as-1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .sign(as.signingKey);
      const answers = [
        (await dpopFetch(`${base}/mcp`, { accessToken: good })).status,
        (await dpopFetch(`${base}/other`, { accessToken: good })).status,
      ];
      expect(answers).toEqual([200, 401]);
      expect(outcomes.map((o) => (o.outcome === 'accepted' ? 'accepted' : o.reason))).toEqual([
        'accepted',
        'token_audience',
      ]);
      // (popkit's core refuses a JWT without exp itself; a validator hook may not)
      outcomes.length = 0;
      const hookApp = express();
      hookApp.get(
        '/mcp',
        requireDPoPAuth({
          ...options({ onResult: (o) => outcomes.push(o) }),
          accessToken: () => ({ cnf: { jkt: k.jkt }, aud: AUDIENCE, client_id: 'c1' }),
        }),
        (_q, r) => r.json({}),
      );
      const hook = hookApp.listen(0, '127.0.0.1');
      await new Promise((r) => hook.once('listening', r));
      try {
        const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/mcp`;
        expect((await dpopFetch(url, { accessToken: noExp })).status).toBe(401);
      } finally {
        await new Promise((r) => hook.close(r));
      }
      expect(outcomes).toMatchObject([{ outcome: 'rejected', reason: 'token_malformed' }]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('requireDPoPAuth on Express', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const app = express();
    const common = options({ resourceMetadataUrl: METADATA } as Partial<DPoPAuthOptions>);
    app.get(
      '/mcp',
      requireDPoPAuth({ ...common, expectedResource: new URL(AUDIENCE) }),
      (req, res) =>
        res.json({ auth: req.auth, dpop: { scheme: req.dpop!.scheme, jkt: req.dpop!.jkt } }),
    );
    app.get(
      '/other',
      requireDPoPAuth({ ...common, expectedResource: new URL('https://elsewhere.example') }),
      (_req, res) => res.json({}),
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it("sets the SDK AuthInfo on req.auth and popkit's result on req.dpop", async () => {
    const k = await clientKey();
    const token = await as.mint({ cnf: { jkt: k.jkt }, scope: 'a b' });
    const res = await createDPoPFetch(k.keyPair)(`${base}/mcp`, { accessToken: token });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { auth: Record<string, unknown>; dpop: unknown };
    expect(body.dpop).toEqual({ scheme: 'DPoP', jkt: k.jkt });
    expect(body.auth).toMatchObject({
      token,
      clientId: 'c1',
      scopes: ['a', 'b'],
      resource: `${AUDIENCE}/`,
      extra: { jkt: k.jkt, scheme: 'DPoP', sub: 'user-1', iss: ISSUER },
    });
    expect(typeof body.auth.expiresAt).toBe('number');
  });

  it('answers refusals with JSON and the challenge, and checks expectedResource', async () => {
    const bare = await fetch(`${base}/mcp`);
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toBe(
      `DPoP resource_metadata="${METADATA}", algs="ES256 EdDSA Ed25519 PS256 RS256"`,
    );
    expect(await bare.json()).toEqual({
      error: 'invalid_token',
      error_description: 'An access token is required',
    });
    const k = await clientKey();
    const token = await as.mint({ cnf: { jkt: k.jkt } });
    const other = await createDPoPFetch(k.keyPair)(`${base}/other`, { accessToken: token });
    expect(other.status).toBe(401);
    expect(other.headers.get('www-authenticate')).toMatch(
      /^DPoP error="invalid_token", error_description="The access token is not meant for this resource", resource_metadata=/,
    );
  });

  it('dpopResourceMetadata reads options or the middleware', () => {
    expect(dpopResourceMetadata({})).toEqual({
      dpop_signing_alg_values_supported: ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'],
      dpop_bound_access_tokens_required: true,
    });
    expect(dpopResourceMetadata({ algorithms: ['ES256'], allowUnboundBearer: true })).toEqual({
      dpop_signing_alg_values_supported: ['ES256'],
      dpop_bound_access_tokens_required: false,
    });
    const mw = requireDPoPAuth(options({ algorithms: ['EdDSA'] }));
    expect(dpopResourceMetadata(mw).dpop_signing_alg_values_supported).toEqual(['EdDSA']);
    expect(() => dpopResourceMetadata(() => {})).toThrow(DPoPConfigError);
  });
});
