// SPA libraries teams already use, running their shipped browser bundles in real Chromium, against
// a popkit token endpoint (authorization code + PKCE + dpop_jkt, nonces required, DPoP-bound
// refresh tokens) and a popkit API on another 127.0.0.1 origin (so CORS is real). And
// express-oauth2-jwt-bearer as a verifier of popkit's proofs.
import { createHash, randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  SUPPORTED_ALGORITHMS,
  createProof,
  generateKeyPair,
  thumbprint,
} from '@popkit/dpop-client';
import {
  DPOP_CORS_ALLOW_HEADERS,
  DPOP_CORS_EXPOSE_HEADERS,
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createTokenRequestVerifier,
} from '@popkit/dpop-verifier';
import { dpopAuth, toRequestLike } from '@popkit/dpop-verifier/express';
import cors from 'cors';
import express from 'express';
import { auth as oauth2Bearer } from 'express-oauth2-jwt-bearer';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH, launchChromium } from '../../../test-support/chromium.ts';
import { cell, notApplicable, writeMatrix } from './matrix.ts';

const require = createRequire(import.meta.url);
const packageDir = (name: string) => dirname(require.resolve(`${name}/package.json`));
const version = (name: string) =>
  (JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')) as { version: string })
    .version;

const AUDIENCE = 'https://api.spa.example';
const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface SpaWorld {
  /** The query of every /authorize request the AS received. */
  authorized: Array<Record<string, string | undefined>>;
  as: string;
  api: string;
  page: string;
  close(): Promise<void>;
}

/**
 * A minimal authorization server on popkit's token-request verifier (two-phase: the proof is
 * committed after PKCE and the grant check), auto-approving /authorize, with nonces required;
 * an API on popkit's Express adapter; and a page origin serving a library bundle.
 */
async function startWorld(bundle: { file: string; global: string }): Promise<SpaWorld> {
  const signing = await joseKeyPair('RS256');
  const jwks = { keys: [{ ...(await exportJWK(signing.publicKey)), kid: 'rs1', alg: 'RS256' }] };
  const asServer = createServer();
  const apiServer = createServer();
  const pageServer = createServer();
  const as = await listen(asServer);
  const api = await listen(apiServer);
  const page = await listen(pageServer);
  const issuer = `${as}/`;

  // --- the page origin: the library's shipped browser bundle, and a blank app page
  const lib = readFileSync(bundle.file, 'utf8');
  pageServer.on('request', (req, res) => {
    if (req.url === '/lib.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(lib);
      return;
    }
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<!doctype html><title>spa</title><script src="/lib.js"></script>');
  });

  // --- the authorization server
  const codes = new Map<string, Record<string, string | undefined>>();
  const authorized: Array<Record<string, string | undefined>> = [];
  const refreshTokens = new Map<string, { jkt: string; sub: string; clientId: string }>();
  const checkDPoP = createTokenRequestVerifier({
    tokenEndpoint: `${as}/oauth/token`,
    replay: new MemoryReplayStore(),
    nonces: createNonceIssuer({ secret: randomBytes(32) }),
  });
  const sign = (claims: Record<string, unknown>, typ: string, aud: string, exp = '5m') =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ, kid: 'rs1' })
      .setIssuer(issuer)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(signing.privateKey);
  const asApp = express();
  asApp.use(
    cors({ origin: page, exposedHeaders: [...DPOP_CORS_EXPOSE_HEADERS] }), // (reflects request headers)
  );
  asApp.get('/.well-known/openid-configuration', (_req, res) =>
    res.json({
      issuer,
      authorization_endpoint: `${as}/authorize`,
      token_endpoint: `${as}/oauth/token`,
      jwks_uri: `${as}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['none'],
      dpop_signing_alg_values_supported: [...SUPPORTED_ALGORITHMS],
    }),
  );
  asApp.get('/.well-known/jwks.json', (_req, res) => res.json(jwks));
  asApp.get('/authorize', (req, res) => {
    const q = req.query as Record<string, string | undefined>;
    const code = randomBytes(16).toString('base64url');
    authorized.push({ ...q });
    codes.set(code, { ...q });
    const back = new URL(q.redirect_uri!);
    back.searchParams.set('code', code);
    if (q.state) back.searchParams.set('state', q.state);
    res.redirect(302, back.href);
  });
  asApp.post('/oauth/token', express.urlencoded({ extended: false }), async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const body = req.body as Record<string, string>;
    try {
      if (body.grant_type === 'authorization_code') {
        const code = codes.get(body.code ?? '');
        // check the proof first (recording nothing), against the authorization's dpop_jkt
        const dpop = await checkDPoP.prepare(toRequestLike(req), {
          ...(code?.dpop_jkt ? { dpopJkt: code.dpop_jkt } : {}),
        });
        const pkce = createHash('sha256')
          .update(body.code_verifier ?? '')
          .digest('base64url');
        if (
          !code ||
          code.client_id !== body.client_id ||
          code.redirect_uri !== body.redirect_uri ||
          code.code_challenge !== pkce
        ) {
          return void res.status(400).json({ error: 'invalid_grant' });
        }
        codes.delete(body.code!);
        await dpop!.commit(); // the grant is valid: now the jti is recorded
        const refresh = randomBytes(24).toString('base64url');
        refreshTokens.set(refresh, { jkt: dpop!.jkt, sub: 'user-1', clientId: body.client_id! });
        return void res.set(dpop!.headers).json({
          access_token: await sign(
            { sub: 'user-1', client_id: body.client_id, cnf: { jkt: dpop!.jkt } },
            'at+jwt',
            AUDIENCE,
          ),
          id_token: await sign({ sub: 'user-1', nonce: code.nonce }, 'JWT', body.client_id!),
          refresh_token: refresh,
          token_type: 'DPoP',
          expires_in: 300,
          scope: code.scope ?? 'openid',
        });
      }
      if (body.grant_type === 'refresh_token') {
        const bound = refreshTokens.get(body.refresh_token ?? '');
        // a DPoP-bound refresh token (public client): the proof must be by the bound key
        const dpop = await checkDPoP.prepare(toRequestLike(req), {
          ...(bound ? { boundJkt: bound.jkt } : {}),
        });
        if (!bound || bound.clientId !== body.client_id)
          return void res.status(400).json({ error: 'invalid_grant' });
        await dpop!.commit();
        refreshTokens.delete(body.refresh_token!);
        const next = randomBytes(24).toString('base64url');
        refreshTokens.set(next, bound);
        return void res.set(dpop!.headers).json({
          access_token: await sign(
            { sub: bound.sub, client_id: bound.clientId, cnf: { jkt: dpop!.jkt }, refreshed: true },
            'at+jwt',
            AUDIENCE,
          ),
          id_token: await sign({ sub: bound.sub }, 'JWT', bound.clientId),
          refresh_token: next,
          token_type: 'DPoP',
          expires_in: 300,
        });
      }
      res.status(400).json({ error: 'unsupported_grant_type' });
    } catch (e) {
      if (!(e instanceof DPoPError)) throw e;
      res.status(e.status).set(e.headers).send(e.body);
    }
  });
  asServer.on('request', asApp);

  // --- the API, on popkit's Express adapter, with cors for the page origin
  const apiApp = express();
  apiApp.use(
    cors({
      origin: page,
      allowedHeaders: [...DPOP_CORS_ALLOW_HEADERS],
      exposedHeaders: [...DPOP_CORS_EXPOSE_HEADERS],
    }),
  );
  apiApp.use(
    '/api',
    dpopAuth({
      accessToken: { issuer, audience: AUDIENCE, jwks, algorithms: ['RS256'] },
      publicUrl: api,
      replay: new MemoryReplayStore(),
      nonces: createNonceIssuer({ secret: randomBytes(32) }),
    }),
  );
  apiApp.get('/api/me', (req, res) =>
    res.json({
      sub: req.auth!.claims.sub,
      jkt: req.auth!.jkt,
      refreshed: req.auth!.claims.refreshed ?? false,
    }),
  );
  apiServer.on('request', apiApp);

  return {
    authorized,
    as,
    api,
    page,
    close: async () => {
      for (const s of [asServer, apiServer, pageServer]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}

afterAll(() => writeMatrix());

/** The authorization request carried PKCE (S256) and dpop_jkt (enforced), and a refresh worked. */
function expectLoggedInAndRefreshed(world: SpaWorld, result: Record<string, unknown>): void {
  expect(world.authorized[0]).toMatchObject({
    code_challenge_method: 'S256',
    dpop_jkt: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
  });
  expect(result.refreshedDiffers).toBe(true);
  expect(result.refreshedStatus).toBe(200);
  expect((result.refreshedMe as { refreshed: boolean }).refreshed).toBe(true);
}

/** The API served the call, and the same proof sent again was refused as a replay. */
function expectServedOnceThenReplayRefused(result: Record<string, unknown>): void {
  expect(result.status).toBe(200);
  expect((result.me as { sub: string }).sub).toBe('user-1');
  expect(result.replayStatus).toBe(401);
  expect(result.replayChallenge).toMatch(/already been used/);
}

describe.skipIf(!available)('SPA libraries in real Chromium against popkit', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens the app page, starts the library's login (a redirect) and waits for the callback. */
  async function login(world: SpaWorld, page: Page, start: string): Promise<void> {
    const log: string[] = [];
    page.on('console', (m) => log.push(m.text()));
    page.on('pageerror', (e) => log.push(String(e)));
    await page.goto(`${world.page}/app.html`);
    await page.evaluate(start);
    await page.waitForURL(/\/app\.html\?code=/, { timeout: 15_000 }).catch((e: Error) => {
      throw new Error(`${e.message}; at ${page.url()}; console: ${log.join(' | ')}`);
    });
    await page.waitForFunction(() => document.readyState === 'complete');
  }

  it(`oidc-client-ts ${version('oidc-client-ts')}: code + PKCE + dpop_jkt, nonce at the token endpoint and the API, DPoP-bound refresh, replay refused`, async () => {
    const world = await startWorld({
      file: join(packageDir('oidc-client-ts'), 'dist/browser/oidc-client-ts.min.js'),
      global: 'oidc',
    });
    const page = await browser.newPage();
    const settings = `{
      authority: '${world.as}/', client_id: 'spa', redirect_uri: '${world.page}/app.html',
      response_type: 'code', scope: 'openid offline_access', loadUserInfo: false,
      userStore: new oidc.WebStorageStateStore({ store: window.localStorage }),
      dpop: { store: new oidc.IndexedDbDPoPStore(), bind_authorization_code: true },
    }`;
    try {
      let result: Record<string, unknown> = {};
      await cell(
        'oidc-client-ts',
        'token request',
        `${version('oidc-client-ts')}, shipped browser bundle in Chromium: signinRedirect (code + PKCE + dpop_jkt) -> popkit token endpoint; bound refresh_token via signinSilent`,
        async () => {
          await login(world, page, `void new oidc.UserManager(${settings}).signinRedirect()`);
          result = await page.evaluate(`(async () => {
          const mgr = new oidc.UserManager(${settings});
          const user = await mgr.signinRedirectCallback();
          const api = '${world.api}/api/me';
          const call = async (u, nonce) => {
            const proof = await mgr.dpopProof(api, u, 'GET', nonce);
            const res = await fetch(api, { headers: { authorization: 'DPoP ' + u.access_token, dpop: proof } });
            return { res, proof };
          };
          // the API's nonce challenge, read across origins, then the retry
          const first = await call(user);
          const nonce = first.res.headers.get('dpop-nonce');
          const challenge = first.res.headers.get('www-authenticate');
          const second = await call(user, nonce);
          const me = await second.res.json();
          // a replayed proof (the exact request again) is refused
          const replay = await fetch(api, { headers: { authorization: 'DPoP ' + user.access_token, dpop: second.proof } });
          // refresh with the DPoP-bound refresh token
          const refreshed = await mgr.signinSilent();
          const third = await call(refreshed, nonce);
          return {
            firstStatus: first.res.status, challenge, nonceRead: !!nonce,
            status: second.res.status, me, replayStatus: replay.status,
            replayChallenge: replay.headers.get('www-authenticate'),
            refreshedDiffers: refreshed.access_token !== user.access_token,
            refreshedStatus: third.res.status, refreshedMe: await third.res.json(),
          };
        })()`);
          expectLoggedInAndRefreshed(world, result);
        },
      );
      await cell(
        'oidc-client-ts',
        'nonce retry',
        'use_dpop_nonce at the token endpoint (library) and at the API (app reads DPoP-Nonce cross-origin)',
        async () => {
          expect(result.firstStatus).toBe(401);
          expect(result.challenge).toMatch(/use_dpop_nonce/);
          expect(result.nonceRead).toBe(true);
        },
      );
      await cell(
        'oidc-client-ts',
        'resource request',
        'dpopProof -> popkit dpopAuth (CORS); replayed proof refused',
        async () => {
          expectServedOnceThenReplayRefused(result);
        },
      );
      notApplicable('oidc-client-ts', 'mTLS', 'browser library: no client certificates');
    } finally {
      await page.close();
      await world.close();
    }
  });

  it(`@auth0/auth0-spa-js ${version('@auth0/auth0-spa-js')} (useDpop): code + PKCE + dpop_jkt, nonce retries, bound refresh, replay refused`, async () => {
    const world = await startWorld({
      file: join(packageDir('@auth0/auth0-spa-js'), 'dist/auth0-spa-js.production.js'),
      global: 'auth0',
    });
    const page = await browser.newPage();
    const options = `{
      domain: '${world.as}', clientId: 'spa', useDpop: true, useRefreshTokens: true,
      cacheLocation: 'localstorage',
      authorizationParams: { redirect_uri: '${world.page}/app.html', audience: '${AUDIENCE}', scope: 'openid offline_access' },
    }`;
    try {
      let result: Record<string, unknown> = {};
      await cell(
        '@auth0/auth0-spa-js',
        'token request',
        `${version('@auth0/auth0-spa-js')}, shipped browser bundle in Chromium: loginWithRedirect (code + PKCE + dpop_jkt) -> popkit token endpoint; bound refresh via getTokenSilently`,
        async () => {
          await login(world, page, `void new auth0.Auth0Client(${options}).loginWithRedirect()`);
          result = await page.evaluate(`(async () => {
          const client = new auth0.Auth0Client(${options});
          await client.handleRedirectCallback();
          const api = '${world.api}/api/me';
          // record what the library sends, to replay it
          const sent = [];
          const realFetch = window.fetch.bind(window);
          window.fetch = (input, init) => {
            const url = typeof input === 'string' ? input : input.url;
            if (url.startsWith('${world.api}')) sent.push(new Headers(init && init.headers || (input.headers)));
            return realFetch(input, init);
          };
          const fetcher = client.createFetcher({
            dpopNonceId: 'api',
            getAccessToken: () => client.getTokenSilently({ authorizationParams: { audience: '${AUDIENCE}', scope: 'openid offline_access' } }),
          });
          const res = await fetcher.fetchWithAuth(api);
          const me = await res.json();
          const last = sent[sent.length - 1];
          const replay = await realFetch(api, { headers: { authorization: last.get('authorization'), dpop: last.get('dpop') } });
          const before = await client.getTokenSilently({ authorizationParams: { audience: '${AUDIENCE}', scope: 'openid offline_access' } });
          const after = await client.getTokenSilently({ cacheMode: 'off', authorizationParams: { audience: '${AUDIENCE}', scope: 'openid offline_access' } });
          const res2 = await fetcher.fetchWithAuth(api);
          return {
            status: res.status, me, calls: sent.length, replayStatus: replay.status,
            replayChallenge: replay.headers.get('www-authenticate'),
            refreshedDiffers: before !== after, refreshedStatus: res2.status, refreshedMe: await res2.json(),
          };
        })()`);
          expectLoggedInAndRefreshed(world, result);
        },
      );
      await cell(
        '@auth0/auth0-spa-js',
        'nonce retry',
        'automatic, once, on popkit use_dpop_nonce (token endpoint 400 and API 401, read cross-origin)',
        async () => {
          expect(result.calls).toBeGreaterThanOrEqual(2); // the challenge, then the retry
        },
      );
      await cell(
        '@auth0/auth0-spa-js',
        'resource request',
        'createFetcher().fetchWithAuth -> popkit dpopAuth (CORS); replayed proof refused',
        async () => {
          expectServedOnceThenReplayRefused(result);
        },
      );
      notApplicable('@auth0/auth0-spa-js', 'mTLS', 'browser library: no client certificates');
    } finally {
      await page.close();
      await world.close();
    }
  });
});

describe('express-oauth2-jwt-bearer as a verifier of popkit proofs', () => {
  it(`${version('express-oauth2-jwt-bearer')}: accepts popkit proofs of every algorithm popkit signs`, async () => {
    const signing = await joseKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(signing.publicKey)), kid: 'k', alg: 'ES256' }] };
    const app = express();
    app.use(
      oauth2Bearer({
        issuer: 'https://as.peer.example',
        audience: AUDIENCE,
        publicKey: jwks,
        tokenSigningAlg: 'ES256',
        dpop: { enabled: true, required: true },
      }),
    );
    app.get('/data', (_req, res) => res.json({ ok: true }));
    const server = createServer(app);
    const base = await listen(server);
    try {
      await cell(
        'express-oauth2-jwt-bearer',
        'resource request',
        `${version('express-oauth2-jwt-bearer')}: popkit createProof (${SUPPORTED_ALGORITHMS.join(', ')}) -> its DPoP check; it lacks a replay check (a replayed proof is accepted) and server nonces`,
        async () => {
          for (const alg of SUPPORTED_ALGORITHMS) {
            const key = await generateKeyPair(alg);
            const token = await new SignJWT({ cnf: { jkt: await thumbprint(key) } })
              .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
              .setIssuer('https://as.peer.example')
              .setAudience(AUDIENCE)
              .setExpirationTime('5m')
              .sign(signing.privateKey);
            const url = `${base}/data`;
            const headers = {
              authorization: `DPoP ${token}`,
              dpop: await createProof(key, { method: 'GET', url, accessToken: token }),
            };
            const res = await fetch(url, { headers });
            expect([alg, res.status]).toEqual([alg, 200]);
            // recorded for the matrix: the peer accepts the same proof a second time
            const again = await fetch(url, { headers });
            expect([alg, again.status]).toEqual([alg, 200]);
          }
        },
      );
      notApplicable(
        'express-oauth2-jwt-bearer',
        'nonce retry',
        'no server nonces (RFC 9449 §8); popkit adds them',
      );
      notApplicable('express-oauth2-jwt-bearer', 'token request', 'a resource-server middleware');
      notApplicable('express-oauth2-jwt-bearer', 'mTLS', 'not exercised here');
    } finally {
      server.close();
    }
  });
});
