import { fileURLToPath } from 'node:url';
import { EmbeddedJWK, calculateJwkThumbprint, jwtVerify } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import type { BundleInPage } from '../../../test-support/browser-bundle.ts';
import { bundleInChromium } from '../../../test-support/browser-bundle.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH } from '../../../test-support/chromium.ts';
import type { ServerControl } from './helpers/dpop-server.ts';
import { startDPoPServer } from './helpers/dpop-server.ts';

const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);

describe.skipIf(!available)('@popkit/dpop-client/browser in real headless Chromium', () => {
  let env: BundleInPage;
  let browser: Browser;
  let bundle: string;
  let open: (page: Page) => Promise<void>;

  beforeAll(async () => {
    env = await bundleInChromium(
      `export * from './src/index.ts'; export * from './src/browser/index.ts';`,
      fileURLToPath(new URL('..', import.meta.url)),
    );
    ({ browser, bundle, open } = env);
  }, 60_000);

  afterAll(() => env?.close());

  it('the browser bundle uses WebCrypto and pulls in no Node module, nor the pure SHA-256', () => {
    expect(bundle).not.toMatch(/node:|require\(|Buffer\./);
    expect(bundle).toMatch(/\.subtle\b/);
    expect(bundle).toContain('src/crypto/web.ts');
    // The pure SHA-256 is for React Native only (the `react-native` condition).
    expect(bundle).not.toContain('src/crypto/sha256.ts');
    expect(bundle).not.toContain('src/crypto/native.ts');
    expect(bundle).not.toContain('src/wire-url.ts'); // nor the URL parser: browsers have WHATWG URL
  });

  it('persists a non-extractable key across reloads, signs proofs that verify in Node, deletes it', async () => {
    const page = await browser.newPage();
    await open(page);
    const first = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const stored = await m.loadOrCreateKeyPair('app');
      const proof = await m.createProof(stored.keyPair, {
        method: 'GET',
        url: 'https://api.example.com/x',
        accessToken: 'tok',
      });
      return {
        jkt: stored.jkt,
        persisted: stored.persisted,
        created: stored.created,
        extractable: stored.keyPair.privateKey.extractable,
        proof,
      };
    });
    expect(first).toMatchObject({ persisted: true, created: true, extractable: false });
    const { payload, protectedHeader } = await jwtVerify(first.proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ['ES256'],
    });
    expect(payload.htu).toBe('https://api.example.com/x');
    expect(await calculateJwkThumbprint(protectedHeader.jwk!)).toBe(first.jkt);

    await page.reload();
    await page.waitForFunction(() => (window as any).popkit);
    const second = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const stored = await m.loadOrCreateKeyPair('app');
      const exported = await crypto.subtle.exportKey('jwk', stored.keyPair.privateKey).then(
        () => 'exported',
        (e: Error) => e.name,
      );
      return { jkt: stored.jkt, created: stored.created, exported };
    });
    expect(second).toEqual({ jkt: first.jkt, created: false, exported: 'InvalidAccessError' });

    const deleted = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const gone = await m.deleteKeyPair('app');
      const fresh = await m.loadOrCreateKeyPair('app');
      return { gone, jkt: fresh.jkt, created: fresh.created };
    });
    expect(deleted.gone).toBe(true);
    expect(deleted.created).toBe(true);
    expect(deleted.jkt).not.toBe(first.jkt);
    await page.close();
  });

  it('two tabs asking at once agree on one key (Web Locks)', async () => {
    const context = await browser.newContext();
    const [a, b] = await Promise.all([context.newPage(), context.newPage()]);
    await Promise.all([open(a), open(b)]);
    const grab = (p: typeof a) =>
      p.evaluate(async () => {
        const m = (window as any).popkit;
        return (await m.loadOrCreateKeyPair('shared', { alg: 'EdDSA' })).jkt as string;
      });
    const [ja, jb] = await Promise.all([grab(a), grab(b)]);
    expect(ja).toBe(jb);
    await context.close();
  });

  it('falls back to memory with persisted: false where IndexedDB is unavailable', async () => {
    const page = await browser.newPage();
    await page.addInitScript(() =>
      Object.defineProperty(window, 'indexedDB', { value: undefined }),
    );
    await open(page);
    const result = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const a = await m.loadOrCreateKeyPair('mem');
      const b = await m.loadOrCreateKeyPair('mem');
      return { persisted: a.persisted, same: a.jkt === b.jkt };
    });
    expect(result).toEqual({ persisted: false, same: true });
    await page.close();
  });

  describe('redirects: the browser follows them (what Chromium does, pinned)', () => {
    // The page, A and B are three origins (three ports on 127.0.0.1); A and B answer CORS.
    let a: ServerControl;
    let b: ServerControl;
    let page: Page;
    beforeAll(async () => {
      [a, b] = await Promise.all([startDPoPServer(), startDPoPServer()]);
      a.cors = b.cors = true;
      page = await browser.newPage();
      await open(page);
      await page.evaluate(async () => {
        const w = window as any;
        w.dpopFetch = w.popkit.createDPoPFetch(await w.popkit.generateKeyPair());
      });
    });
    afterAll(() => Promise.all([a?.close(), b?.close()]));
    const call = (url: string, init: Record<string, unknown> = {}) =>
      page.evaluate(
        async ([url, init]) => {
          try {
            const r: Response = await (window as any).dpopFetch(url, init);
            return { status: r.status, type: r.type, url: r.url };
          } catch (e) {
            return { error: (e as Error).name };
          }
        },
        [url, init] as const,
      );

    it("a cross-origin redirect: B gets a preflight, then the proof but never the token; B's nonce and Date (200 days off) do not touch A", async () => {
      a.redirect = (seen) =>
        seen.path === '/api/moved' ? { status: 307, location: `${b.url}/api/x` } : undefined;
      b.skew = 200 * 24 * 3600;
      b.extraHeaders = { 'dpop-nonce': 'nonce-from-b' };
      const res = await call(`${a.url}/api/moved`, { accessToken: 'tok-a' });
      expect(res).toEqual({ status: 401, type: 'cors', url: `${b.url}/api/x` });
      expect(b.seen).toHaveLength(1);
      expect(b.seen[0]!.dpop).toBe(true); // B allowed the DPoP header in its preflight
      expect(b.seen[0]!.authorization).toBeUndefined(); // Fetch: dropped cross-origin
      a.seen.length = 0;
      expect(await call(`${a.url}/api/orders`, { accessToken: 'tok-a' })).toMatchObject({
        status: 200,
      });
      expect(a.seen).toHaveLength(1);
      expect(a.seen[0]!.nonce).toBe(a.nonce);
      expect(Math.abs(a.seen[0]!.iat! - Date.now() / 1000)).toBeLessThan(5);
    });

    it('a cross-origin redirect to an origin that does not allow the DPoP header fails; the proof never reaches it', async () => {
      a.redirect = (seen) =>
        seen.path === '/api/elsewhere' ? { status: 302, location: `${b.url}/api/y` } : undefined;
      b.cors = false;
      b.seen.length = 0;
      expect(await call(`${a.url}/api/elsewhere`)).toEqual({ error: 'TypeError' });
      expect(b.seen.map((s) => [s.method, s.dpop])).toEqual([['OPTIONS', false]]);
      b.cors = true;
    });

    it("a same-origin redirect re-sends the first request's proof (its htu), so an htu check rejects it; redirect: 'manual' is opaque", async () => {
      a.redirect = (seen) =>
        seen.path === '/api/old' ? { status: 307, location: '/api/new' } : undefined;
      a.seen.length = 0;
      expect(await call(`${a.url}/api/old`)).toMatchObject({ status: 401 });
      expect(a.seen.at(-1)).toMatchObject({ path: '/api/new', htu: `${a.url}/api/old` });
      expect(await call(`${a.url}/api/old`, { redirect: 'manual' })).toEqual({
        status: 0,
        type: 'opaqueredirect',
        url: `${a.url}/api/old`,
      });
    });
  });
});
