import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createDPoPFetch, generateKeyPair } from '@popkit/dpop-client';
import type { AuthorizationServer } from '@popkit/example-authorization-server';
import { startAuthorizationServer } from '@popkit/example-authorization-server';
import type { RunningApi } from '@popkit/example-resource-server';
import { startApi } from '@popkit/example-resource-server';
import { buildAuthOptions } from '@popkit/example-resource-server/options';
import { ensureDemoPki } from '@popkit/example-shared/pki';
import { freePort } from '@popkit/example-shared/redis';
import { fetchTrusting } from '@popkit/example-shared/tls';
import type { Browser, Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { createServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH, launchChromium } from '../../../test-support/chromium.ts';

const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);

describe.skipIf(!available)(
  'browser app in real headless Chromium: login, call, reload, stolen token',
  () => {
    let as: AuthorizationServer;
    let api: RunningApi;
    let vite: ViteDevServer;
    let browser: Browser;
    let page: Page;
    let origin: string;
    let trusting: typeof fetch;

    beforeAll(async () => {
      const pki = await ensureDemoPki(fileURLToPath(new URL('../../.pki', import.meta.url)));
      trusting = fetchTrusting(pki.caPem);
      const vitePort = await freePort();
      origin = `http://127.0.0.1:${vitePort}`;
      const apiPort = await freePort();
      const apiUrl = `https://127.0.0.1:${apiPort}`;
      as = await startAuthorizationServer({
        pki,
        resource: apiUrl,
        spaRedirectUris: [`${origin}/`],
      });
      const auth = buildAuthOptions({
        issuer: as.issuer,
        audience: apiUrl,
        publicUrl: apiUrl,
        fetch: trusting,
        nonceSecret: randomBytes(32).toString('hex'),
        redisUrl: '',
      });
      api = await startApi(
        auth,
        { keyPem: pki.server.keyPem, certPem: pki.server.certPem, caPem: pki.caPem },
        apiPort,
      );
      process.env.VITE_ISSUER = as.issuer;
      process.env.VITE_API = apiUrl;
      vite = await createServer({
        root: fileURLToPath(new URL('..', import.meta.url)),
        server: { port: vitePort, host: '127.0.0.1', strictPort: true },
        logLevel: 'silent',
      });
      await vite.listen();
      browser = await launchChromium();
      const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the demo CA is not in Chromium's store
      page = await context.newPage();
    });

    afterAll(async () => {
      await browser?.close();
      await vite?.close();
      await api?.close();
      await as?.close();
    });

    const text = (id: string) => page.locator(`#${id}`).innerText();

    it('logs in (code + PKCE + dpop_jkt), calls the API, survives a reload with the same key', async () => {
      await page.goto(origin);
      await page.waitForFunction(
        () => document.getElementById('status')?.textContent === 'logged out',
      );
      const jkt = await text('jkt');
      expect(jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await text('persisted')).toContain('IndexedDB');

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

      await page.click('#call');
      await page.waitForFunction(() => document.getElementById('result')?.textContent !== '');
      expect(await text('result')).toMatch(/^200 .*"scheme":"DPoP"/);

      await page.reload();
      await page.waitForFunction(
        () => document.getElementById('status')?.textContent === 'logged in',
      );
      expect(await text('jkt')).toBe(jkt);
      await page.evaluate(() => (document.getElementById('result')!.textContent = ''));
      await page.click('#call');
      await page.waitForFunction(() => document.getElementById('result')?.textContent !== '');
      expect(await text('result')).toMatch(/^200 /);
    });

    it('a token copied out of the page is refused when replayed from Node', async () => {
      const stolen = await page.evaluate(() => sessionStorage.getItem('access_token'));
      expect(stolen).toBeTruthy();
      const asBearer = await trusting(`${api.url}/api/orders`, {
        headers: { authorization: `Bearer ${stolen}` },
      });
      expect(asBearer.status).toBe(401);
      expect(asBearer.headers.get('www-authenticate')).toContain('error="invalid_token"');
      const withOwnKey = await createDPoPFetch(await generateKeyPair(), {
        fetch: trusting as never,
      })(`${api.url}/api/orders`, { accessToken: stolen! });
      expect(withOwnKey.status).toBe(401);
    });
  },
);
