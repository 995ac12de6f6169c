import { fileURLToPath } from 'node:url';
import { EmbeddedJWK, calculateJwkThumbprint, jwtVerify } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import type { BundleInPage } from '../../../test-support/browser-bundle.ts';
import { bundleInChromium } from '../../../test-support/browser-bundle.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH } from '../../../test-support/chromium.ts';

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

  it('the browser bundle uses WebCrypto and pulls in no Node module', () => {
    expect(bundle).not.toMatch(/node:|require\(|Buffer\./);
    expect(bundle).toContain('crypto.subtle.sign');
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
});
