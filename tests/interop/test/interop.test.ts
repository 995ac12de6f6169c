import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createDPoPFetch, createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { MemoryReplayStore, createDPoPAuth, createNonceIssuer } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import type { AuthorizationServer } from '@popkit/example-authorization-server';
import {
  MTLS_CLIENT_ID,
  SERVICE_CLIENT,
  startAuthorizationServer,
} from '@popkit/example-authorization-server';
import type { MinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import { startMinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import { ensureDemoPki } from '@popkit/example-shared/pki';
import { fetchTrusting } from '@popkit/example-shared/tls';
import { createMtlsFetch } from '@popkit/mtls-binding/node';
import { generateProof } from 'dpop';
import express from 'express';
import { EmbeddedJWK, createRemoteJWKSet, customFetch, decodeJwt, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cell, notApplicable, writeMatrix } from './matrix.ts';

const AUDIENCE = 'https://api.interop.example';
let minimal: MinimalAuthorizationServer;
let rs: Server;
let rsUrl: string;
const nonces = createNonceIssuer({ secret: randomBytes(32) });
const rsStore = new MemoryReplayStore();

beforeAll(async () => {
  minimal = await startMinimalAuthorizationServer({
    client: { id: 'svc', secret: 'secret' },
    audience: AUDIENCE,
  });
  const app = express();
  rs = app.listen(0, '127.0.0.1');
  await new Promise((r) => rs.once('listening', r));
  rsUrl = `http://127.0.0.1:${(rs.address() as AddressInfo).port}`;
  app.use(
    dpopAuth({
      accessToken: {
        issuer: minimal.issuer,
        audience: AUDIENCE,
        jwks: minimal.jwks as never,
        algorithms: ['ES256'],
      },
      publicUrl: rsUrl,
      replay: rsStore,
      nonces,
    }),
  );
  app.get('/resource', (req, res) => res.json({ scheme: req.auth!.scheme, jkt: req.auth!.jkt }));
});

afterAll(async () => {
  writeMatrix();
  await new Promise((r) => rs.close(r));
  await minimal.close();
});

/** URL spellings where a normalised htu and the wire differ (percent-encoding, ports, IPv6, dots). */
const UNUSUAL_SPELLINGS = [
  'https://rs.interop.example/a%7Eb', // percent-encoded unreserved character
  'https://rs.interop.example/a%7eb', // lower-case hex
  'https://rs.interop.example/caf\u00e9/%e2%82%ac', // non-ASCII path, lower-case escapes
  'https://rs.interop.example:443/default-port',
  'https://[2001:db8::1]/ipv6',
  'https://[2001:DB8:0:0:0:0:0:1]:8443/ipv6-long',
  'https://rs.interop.example./trailing-dot',
  'https://RS.Interop.Example/%41%42',
];

describe('oauth4webapi', () => {
  const as = () =>
    ({
      issuer: minimal.issuer,
      token_endpoint: `${minimal.issuer}/token`,
      jwks_uri: `${minimal.issuer}/jwks`,
    }) as oauth.AuthorizationServer;
  const insecure = { [oauth.allowInsecureRequests]: true };

  it('its DPoP handle gets a token from popkit createTokenRequestVerifier, and calls popkit dpopAuth through the nonce challenge', async () => {
    const keyPair = await oauth.generateKeyPair('ES256');
    const o4wClient: oauth.Client = { client_id: 'svc' };
    const DPoP = oauth.DPoP(o4wClient, keyPair);
    let token = '';
    await cell(
      'oauth4webapi',
      'token request',
      'DPoP handle -> popkit token endpoint (400 use_dpop_nonce, then 200)',
      async () => {
        const grant = () =>
          oauth.clientCredentialsGrantRequest(
            as(),
            o4wClient,
            oauth.ClientSecretBasic('secret'),
            new URLSearchParams(),
            { DPoP, ...insecure },
          );
        let result: oauth.TokenEndpointResponse;
        try {
          result = await oauth.processClientCredentialsResponse(as(), o4wClient, await grant());
        } catch (error) {
          expect(oauth.isDPoPNonceError(error)).toBe(true);
          result = await oauth.processClientCredentialsResponse(as(), o4wClient, await grant());
        }
        expect(result.token_type).toBe('dpop');
        token = result.access_token;
        expect(decodeJwt(token).cnf).toEqual({ jkt: await thumbprint(keyPair) });
      },
    );
    await cell(
      'oauth4webapi',
      'nonce retry',
      'isDPoPNonceError on popkit 401 challenge, retry accepted',
      async () => {
        const call = () =>
          oauth.protectedResourceRequest(
            token,
            'GET',
            new URL(`${rsUrl}/resource`),
            new Headers(),
            null,
            { DPoP, ...insecure },
          );
        let response: Response;
        try {
          response = await call();
        } catch (error) {
          expect(oauth.isDPoPNonceError(error)).toBe(true);
          response = await call();
        }
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ scheme: 'DPoP' });
      },
    );
  });

  it('validateJwtAccessToken (its resource-server side) accepts popkit proofs', async () => {
    await cell(
      'oauth4webapi',
      'resource request',
      'popkit createProof -> validateJwtAccessToken; o4w client -> popkit dpopAuth',
      async () => {
        const keyPair = await generateKeyPair();
        const res = await createDPoPFetch(keyPair)(`${minimal.issuer}/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${btoa('svc:secret')}` },
          body: new URLSearchParams({ grant_type: 'client_credentials' }),
        });
        const { access_token: token } = (await res.json()) as { access_token: string };
        const url = 'https://rs.interop.example/data';
        const request = new Request(url, {
          headers: {
            authorization: `DPoP ${token}`,
            dpop: await createProof(keyPair, { method: 'GET', url, accessToken: token }),
          },
        });
        const claims = await oauth.validateJwtAccessToken(as(), request, AUDIENCE, { ...insecure });
        expect(claims.cnf).toEqual({ jkt: await thumbprint(keyPair) });
        // Unusual URL spellings: popkit signs what goes on the wire, so a verifier that compares
        // the URL as received (oauth4webapi) and popkit's normalising verifier both accept.
        const verifier = createDPoPAuth({
          accessToken: {
            issuer: minimal.issuer,
            audience: AUDIENCE,
            jwks: minimal.jwks as never,
            algorithms: ['ES256'],
          },
          replay: new MemoryReplayStore(),
          dangerouslyTrustRequestUrl: true, // each spelling names its own host
        });
        for (const spelling of UNUSUAL_SPELLINGS) {
          const headers = {
            authorization: `DPoP ${token}`,
            dpop: await createProof(keyPair, { method: 'GET', url: spelling, accessToken: token }),
          };
          const req = new Request(spelling, { headers });
          await expect(
            oauth.validateJwtAccessToken(as(), req, AUDIENCE, { ...insecure }),
            spelling,
          ).resolves.toBeTruthy();
          const fresh = {
            authorization: `DPoP ${token}`,
            dpop: await createProof(keyPair, { method: 'GET', url: spelling, accessToken: token }),
          };
          await expect(
            verifier.verify({ method: 'GET', url: req.url, headers: fresh }),
            spelling,
          ).resolves.toMatchObject({ scheme: 'DPoP' });
        }
      },
    );
    notApplicable(
      'oauth4webapi',
      'mTLS',
      'validateJwtAccessToken rejects x5t#S256 tokens by design',
    );
  });
});

describe('openid-client 6', () => {
  it('clientCredentialsGrant and fetchProtectedResource with its DPoP handle, against popkit, with automatic nonce retry', async () => {
    const config = new client.Configuration(
      { issuer: minimal.issuer, token_endpoint: `${minimal.issuer}/token` },
      'svc',
      undefined,
      client.ClientSecretBasic('secret'),
    );
    client.allowInsecureRequests(config);
    const calls: string[] = [];
    config[client.customFetch] = (url: string, options: client.CustomFetchOptions) => {
      calls.push(new URL(url).pathname);
      return fetch(url, options as RequestInit);
    };
    const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    let token = '';
    await cell(
      'openid-client',
      'token request',
      'clientCredentialsGrant -> popkit token endpoint',
      async () => {
        const tokens = await client.clientCredentialsGrant(config, {}, { DPoP });
        expect(tokens.token_type).toBe('dpop');
        token = tokens.access_token;
      },
    );
    await cell(
      'openid-client',
      'resource request',
      'fetchProtectedResource -> popkit dpopAuth',
      async () => {
        const response = await client.fetchProtectedResource(
          config,
          token,
          new URL(`${rsUrl}/resource`),
          'GET',
          undefined,
          undefined,
          { DPoP },
        );
        expect(response.status).toBe(200);
      },
    );
    await cell(
      'openid-client',
      'nonce retry',
      'automatic, once, on popkit use_dpop_nonce (token endpoint and resource)',
      async () => {
        expect(calls).toEqual(['/token', '/token', '/resource', '/resource']);
      },
    );
    notApplicable(
      'openid-client',
      'mTLS',
      'covered by the oidc-provider row (client side is undici + certificate)',
    );
  });
});

describe('panva dpop', () => {
  it('its proofs pass popkit token-endpoint and resource checks (manual nonce)', async () => {
    const keyPair = await generateKeyPair('EdDSA');
    let token = '';
    await cell(
      'panva dpop',
      'token request',
      'generateProof (alg Ed25519) -> popkit token endpoint',
      async () => {
        const post = (proof: string) =>
          fetch(`${minimal.issuer}/token`, {
            method: 'POST',
            headers: {
              authorization: `Basic ${btoa('svc:secret')}`,
              dpop: proof,
              'content-type': 'application/x-www-form-urlencoded',
            },
            body: 'grant_type=client_credentials',
          });
        const first = await post(await generateProof(keyPair, `${minimal.issuer}/token`, 'POST'));
        expect(first.status).toBe(400);
        const nonce = first.headers.get('dpop-nonce')!;
        const second = await post(
          await generateProof(keyPair, `${minimal.issuer}/token`, 'POST', nonce),
        );
        expect(second.status).toBe(200);
        token = ((await second.json()) as { access_token: string }).access_token;
      },
    );
    await cell(
      'panva dpop',
      'resource request',
      'generateProof with ath + nonce -> popkit dpopAuth',
      async () => {
        const proof = await generateProof(
          keyPair,
          `${rsUrl}/resource`,
          'GET',
          await nonces.current(undefined, rsStore.epoch), // nonces are bound to the store's epoch
          token,
        );
        const res = await fetch(`${rsUrl}/resource`, {
          headers: { authorization: `DPoP ${token}`, dpop: proof },
        });
        expect(res.status).toBe(200);
      },
    );
    notApplicable('panva dpop', 'nonce retry', 'proof library only: the caller passes the nonce');
    notApplicable('panva dpop', 'mTLS', 'DPoP only');
  });
});

describe('jose', () => {
  it('verifies popkit proofs with EmbeddedJWK', async () => {
    await cell(
      'jose',
      'resource request',
      'popkit createProof -> jwtVerify(EmbeddedJWK)',
      async () => {
        for (const alg of ['ES256', 'EdDSA', 'PS256'] as const) {
          const proof = await createProof(await generateKeyPair(alg), {
            method: 'GET',
            url: `${rsUrl}/resource`,
            accessToken: 't',
          });
          await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [alg] });
        }
      },
    );
    notApplicable('jose', 'token request', 'a JOSE library, not an OAuth client');
    notApplicable('jose', 'nonce retry', 'a JOSE library, not an OAuth client');
    notApplicable('jose', 'mTLS', 'a JOSE library');
  });
});

describe('oidc-provider 9 (the authorization server)', () => {
  let as: AuthorizationServer;
  let trusting: typeof fetch;
  let pki: Awaited<ReturnType<typeof ensureDemoPki>>;
  beforeAll(async () => {
    pki = await ensureDemoPki(fileURLToPath(new URL('../../../examples/.pki', import.meta.url)));
    trusting = fetchTrusting(pki.caPem);
    as = await startAuthorizationServer({
      pki,
      resource: AUDIENCE,
      spaRedirectUris: ['http://127.0.0.1/cb'],
    });
  });
  afterAll(() => as.close());

  const verifier = () =>
    createDPoPAuth({
      accessToken: {
        issuer: as.issuer,
        audience: AUDIENCE,
        jwks: createRemoteJWKSet(new URL(`${as.issuer}/jwks`), {
          [customFetch]: (url: string, init: RequestInit) => trusting(url, init),
        }),
      },
      replay: new MemoryReplayStore(),
      publicUrl: 'https://api.interop.example',
      certificate: () => thumbprintPresented, // certificate-bound tokens on Bearer, nothing unbound
    });
  let thumbprintPresented: string | undefined;

  it('popkit client gets DPoP-bound tokens through its required nonces; popkit RS accepts them', async () => {
    const keyPair = await generateKeyPair();
    const events: string[] = [];
    const dpopFetch = createDPoPFetch(keyPair, {
      fetch: trusting as never,
      onEvent: (e) => events.push(e.type),
    });
    let token = '';
    await cell(
      'oidc-provider',
      'token request',
      'popkit createDPoPFetch -> client_credentials, cnf.jkt checked',
      async () => {
        const res = await dpopFetch(`${as.issuer}/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${btoa(`${SERVICE_CLIENT.id}:${SERVICE_CLIENT.secret}`)}`,
          },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            resource: AUDIENCE,
            scope: 'orders:read',
          }),
        });
        const body = (await res.json()) as { access_token: string; token_type: string };
        expect(body.token_type).toBe('DPoP');
        token = body.access_token;
        expect(decodeJwt(token).cnf).toEqual({ jkt: await thumbprint(keyPair) });
      },
    );
    await cell(
      'oidc-provider',
      'nonce retry',
      'popkit client retries once on its 400 use_dpop_nonce',
      async () => {
        expect(events).toContain('retry');
      },
    );
    await cell(
      'oidc-provider',
      'resource request',
      'its RFC 9068 JWT + popkit proof -> popkit createDPoPAuth',
      async () => {
        const url = 'https://api.interop.example/orders';
        const result = await verifier().verify({
          method: 'GET',
          url,
          headers: {
            authorization: `DPoP ${token}`,
            dpop: await createProof(keyPair, { method: 'GET', url, accessToken: token }),
          },
        });
        expect(result.jkt).toBe(await thumbprint(keyPair));
      },
    );
  });

  it('mTLS: tls_client_auth with a .p12 gives a certificate-bound token that popkit enforces', async () => {
    await cell(
      'oidc-provider',
      'mTLS',
      'popkit createMtlsFetch (.p12) -> tls_client_auth; x5t#S256 enforced by popkit RS',
      async () => {
        const mtlsFetch = await createMtlsFetch(
          { pfx: pki.serviceP12, passphrase: pki.serviceP12Password },
          { ca: pki.caPem },
        );
        const res = await mtlsFetch(`${as.issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: MTLS_CLIENT_ID,
            resource: AUDIENCE,
          }).toString(),
        });
        const { access_token: token } = (await res.json()) as { access_token: string };
        expect(decodeJwt(token).cnf).toEqual({ 'x5t#S256': mtlsFetch.thumbprint });
        const auth = verifier();
        thumbprintPresented = mtlsFetch.thumbprint;
        await auth.verify({
          method: 'GET',
          url: 'https://api.interop.example/x',
          headers: { authorization: `Bearer ${token}` },
        });
        thumbprintPresented = 'A'.repeat(43);
        await expect(
          auth.verify({
            method: 'GET',
            url: 'https://api.interop.example/x',
            headers: { authorization: `Bearer ${token}` },
          }),
        ).rejects.toMatchObject({ reason: 'certificate_mismatch' });
        await mtlsFetch.close();
      },
    );
  });
});
