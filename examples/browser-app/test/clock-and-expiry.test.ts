// Production faults in real headless Chromium, against the real example servers:
// - a device clock 10 minutes fast or slow (Playwright's clock override of the page): the SPA
//   logs in (oidc-provider) and calls the API (popkit's Express adapter), and a page logs in at
//   popkit's own token endpoint (the minimal AS, where the proof's iat is checked): each request
//   succeeds with at most one retry, the offset learned from the exposed `Date`;
// - an access token that expires mid-session (1 s lifetime): onTokenExpired runs a
//   refresh-token grant bound to the same key and the call is retried once; without the hook,
//   ERR_DPOP_TOKEN_EXPIRED.
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { AuthorizationServer } from '@popkit/example-authorization-server';
import { startAuthorizationServer } from '@popkit/example-authorization-server';
import type { MinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import { startMinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import type { RunningApi } from '@popkit/example-resource-server';
import { startApi } from '@popkit/example-resource-server';
import { buildAuthOptions } from '@popkit/example-resource-server/options';
import type { DemoPki } from '@popkit/example-shared/pki';
import { ensureDemoPki } from '@popkit/example-shared/pki';
import { freePort } from '@popkit/example-shared/redis';
import { fetchTrusting } from '@popkit/example-shared/tls';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { createServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import type { BundleInPage } from '../../../test-support/browser-bundle.ts';
import { bundleInChromium } from '../../../test-support/browser-bundle.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH, launchChromium } from '../../../test-support/chromium.ts';

const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);
const SKEWS = [
  [10 * 60_000, '10 min fast'],
  [-10 * 60_000, '10 min slow'],
] as const;

/** A fresh context whose pages run `skew` ms off the real clock (Playwright's clock). */
async function skewedPage(browser: Browser, skew: number): Promise<[BrowserContext, Page]> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the demo CA
  const page = await context.newPage();
  await page.clock.install({ time: Date.now() + skew });
  return [context, page];
}

async function expectSkewed(page: Page, skew: number): Promise<void> {
  const pageNow = await page.evaluate(() => Date.now());
  expect(Math.abs(pageNow - Date.now() - skew)).toBeLessThan(30_000);
}

let pki: DemoPki;
let trusting: typeof fetch;
beforeAll(async () => {
  pki = await ensureDemoPki(fileURLToPath(new URL('../../.pki', import.meta.url)));
  trusting = fetchTrusting(pki.caPem);
});

const tls = () => ({ keyPem: pki.server.keyPem, certPem: pki.server.certPem, caPem: pki.caPem });

describe.skipIf(!available)('the SPA with a skewed device clock (oidc-provider AS + API)', () => {
  let as: AuthorizationServer;
  let api: RunningApi;
  let vite: ViteDevServer;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    const vitePort = await freePort();
    origin = `http://127.0.0.1:${vitePort}`;
    const apiPort = await freePort();
    const apiUrl = `https://127.0.0.1:${apiPort}`;
    as = await startAuthorizationServer({ pki, resource: apiUrl, spaRedirectUris: [`${origin}/`] });
    const auth = buildAuthOptions({
      issuer: as.issuer,
      audience: apiUrl,
      publicUrl: apiUrl,
      fetch: trusting,
      nonceSecret: randomBytes(32).toString('hex'),
      redisUrl: '',
    });
    api = await startApi(auth, tls(), apiPort);
    process.env.VITE_ISSUER = as.issuer;
    process.env.VITE_API = apiUrl;
    vite = await createServer({
      root: fileURLToPath(new URL('..', import.meta.url)),
      server: { port: vitePort, host: '127.0.0.1', strictPort: true },
      logLevel: 'silent',
    });
    await vite.listen();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await vite?.close();
    await api?.close();
    await as?.close();
  });

  for (const [skew, label] of SKEWS) {
    it(`${label}: logs in and calls the API, at most one retry per request`, async () => {
      const [context, page] = await skewedPage(browser, skew);
      try {
        await page.goto(origin);
        await expectSkewed(page, skew);
        await page.waitForFunction(
          () => document.getElementById('status')?.textContent === 'logged out',
        );
        await page.click('#login');
        await page.waitForSelector('input[name="login"]');
        await page.fill('input[name="login"]', 'alice');
        await page.fill('input[name="password"]', 'secret');
        await page.click('button[type="submit"]');
        if (await page.locator('input[name="prompt"][value="consent"]').count())
          await page.click('button[type="submit"]');
        await page.waitForFunction(
          () => document.getElementById('status')?.textContent === 'logged in',
          undefined,
          { timeout: 30_000 },
        );
        for (let call = 0; call < 2; call++) {
          await page.evaluate(() => (document.getElementById('result')!.textContent = ''));
          await page.click('#call');
          await page.waitForFunction(() => document.getElementById('result')?.textContent !== '');
          expect(await page.locator('#result').innerText()).toMatch(/^200 .*"scheme":"DPoP"/);
        }
        const log = (await page.locator('#log').innerText()).split('\n');
        const retries = (o: string) => log.filter((l) => l.startsWith(`${o}: retried once`));
        // the token request (one nonce round trip; oidc-provider does not check iat once a
        // nonce is in the proof), then two API calls: the first learns nonce and clock in
        // one retry, the second needs none
        expect(retries(as.issuer)).toEqual([`${as.issuer}: retried once (use_dpop_nonce)`]);
        expect(retries(api.url)).toEqual([`${api.url}: retried once (use_dpop_nonce)`]);
        const offset = log.find((l) => l.startsWith(`${api.url}: server clock`));
        expect(offset).toBeDefined();
        expect(Math.abs(Number(/(-?\d+) s/.exec(offset!)![1]) + skew / 1000)).toBeLessThan(30);
      } finally {
        await context.close();
      }
    });
  }
});

describe.skipIf(!available)(
  "popkit's token endpoint (minimal AS) and the API: skewed clocks, tokens that expire",
  () => {
    let env: BundleInPage;
    let minimal: MinimalAuthorizationServer;
    let api: RunningApi;

    beforeAll(async () => {
      env = await bundleInChromium(
        `export { createDPoPFetch, generateKeyPair, thumbprint } from '@popkit/dpop-client';`,
        fileURLToPath(new URL('.', import.meta.url)),
      );
      const apiPort = await freePort();
      const apiUrl = `https://127.0.0.1:${apiPort}`;
      minimal = await startMinimalAuthorizationServer({
        client: { id: 'svc', secret: randomBytes(16).toString('hex') },
        audience: apiUrl,
        publicClient: { id: 'spa', redirectUris: [`${env.origin}/`] },
        accessTokenTtl: 1,
      });
      const auth = buildAuthOptions({
        issuer: minimal.issuer,
        audience: apiUrl,
        publicUrl: apiUrl,
        fetch: globalThis.fetch,
        nonceSecret: randomBytes(32).toString('hex'),
        redisUrl: '',
      });
      api = await startApi(auth, tls(), apiPort);
    });

    afterAll(async () => {
      await env?.close();
      await api?.close();
      await minimal?.close();
    });

    /** In the page: a key (kept as window.key), then the code exchange at popkit's endpoint. */
    async function login(page: Page): Promise<{ status: number; retries: string[] }> {
      const jkt = await page.evaluate(async () => {
        const w = window as any;
        w.key = await w.popkit.generateKeyPair();
        w.events = [];
        w.dpopFetch = w.popkit.createDPoPFetch(w.key, { onEvent: (e: any) => w.events.push(e) });
        return w.popkit.thumbprint(w.key) as Promise<string>;
      });
      const verifier = randomBytes(32).toString('base64url');
      const code = await minimal.authorize({
        clientId: 'spa',
        redirectUri: `${env.origin}/`,
        codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
        codeChallengeMethod: 'S256',
        dpopJkt: jkt,
        subject: 'alice',
      });
      return page.evaluate(
        async ({ issuer, code, verifier, redirectUri }) => {
          const w = window as any;
          const res = await w.dpopFetch(`${issuer}/token`, {
            method: 'POST',
            body: new URLSearchParams({
              grant_type: 'authorization_code',
              code,
              redirect_uri: redirectUri,
              code_verifier: verifier,
              client_id: 'spa',
            }),
          });
          const body = await res.json();
          w.tokens = body;
          return {
            status: res.status,
            retries: w.events.filter((e: any) => e.type === 'retry').map((e: any) => e.reason),
          };
        },
        { issuer: minimal.issuer, code, verifier, redirectUri: `${env.origin}/` },
      );
    }

    for (const [skew, label] of SKEWS) {
      it(`${label}: the token request and the API call succeed, one retry each`, async () => {
        const [context, page] = await skewedPage(env.browser, skew);
        try {
          await env.open(page);
          await expectSkewed(page, skew);
          // one retry: nonce and clock learned from the same 400 use_dpop_nonce
          expect(await login(page)).toEqual({ status: 200, retries: ['use_dpop_nonce'] });
          const call = await page.evaluate(async (apiUrl) => {
            const w = window as any;
            w.events.length = 0;
            const res = await w.dpopFetch(`${apiUrl}/api/orders`, {
              accessToken: w.tokens.access_token,
            });
            return {
              status: res.status,
              retries: w.events.filter((e: any) => e.type === 'retry').length,
              offsets: w.events.filter((e: any) => e.type === 'clock-offset').length,
            };
          }, api.url);
          expect(call).toEqual({ status: 200, retries: 1, offsets: 1 });
        } finally {
          await context.close();
        }
      });
    }

    it('a token that expires mid-session (clock 10 min slow): onTokenExpired refreshes once and the call is retried; without it, ERR_DPOP_TOKEN_EXPIRED', async () => {
      const [context, page] = await skewedPage(env.browser, -10 * 60_000);
      try {
        await env.open(page);
        expect((await login(page)).status).toBe(200);
        const first = await page.evaluate(async (apiUrl) => {
          const w = window as any;
          return (await w.dpopFetch(`${apiUrl}/api/orders`, { accessToken: w.tokens.access_token }))
            .status;
        }, api.url);
        expect(first).toBe(200);
        await new Promise((r) => setTimeout(r, 7000)); // 1 s lifetime + the API's 5 s leeway

        const outcome = await page.evaluate(
          async ({ apiUrl, issuer }) => {
            const w = window as any;
            const calls: any[] = [];
            let tokens = w.tokens;
            const grant = w.popkit.createDPoPFetch(w.key); // refresh grant: the same key
            const withHook = w.popkit.createDPoPFetch(w.key, {
              onTokenExpired: async (context: any) => {
                calls.push({ expired: context.expired, url: context.url });
                const res = await grant(`${issuer}/token`, {
                  method: 'POST',
                  body: new URLSearchParams({
                    grant_type: 'refresh_token',
                    refresh_token: tokens.refresh_token,
                    client_id: 'spa',
                  }),
                });
                if (!res.ok) return undefined;
                tokens = await res.json();
                return tokens.access_token;
              },
            });
            const expiredToken = w.tokens.access_token;
            // two calls at once with the expired token: one refresh grant between them
            const results = await Promise.all(
              [1, 2].map(() => withHook(`${apiUrl}/api/orders`, { accessToken: expiredToken })),
            );
            const statuses = await Promise.all(
              results.map(async (r: Response) => `${r.status} ${(await r.json()).scheme}`),
            );
            let code: string | undefined;
            try {
              await w.popkit.createDPoPFetch(w.key)(`${apiUrl}/api/orders`, {
                accessToken: expiredToken,
              });
            } catch (e: any) {
              code = `${e.name} ${e.code} ${e.response?.status}`;
            }
            return { statuses, calls, rotated: tokens.access_token !== expiredToken, code };
          },
          { apiUrl: api.url, issuer: minimal.issuer },
        );
        expect(outcome).toEqual({
          statuses: ['200 DPoP', '200 DPoP'],
          // the API says only "invalid": the JWT's exp against the response's Date says expired
          calls: [{ expired: true, url: `${api.url}/api/orders` }],
          rotated: true,
          code: 'DPoPClientError ERR_DPOP_TOKEN_EXPIRED 401',
        });
      } finally {
        await context.close();
      }
    });
  },
);
