import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './chromium.ts';

/** A module bundled for the browser and loaded into a real Chromium page as `window.popkit`. */
export interface BundleInPage {
  browser: Browser;
  page: Page;
  /** The bundled JavaScript (to assert what it does not contain). */
  bundle: string;
  /** The http://127.0.0.1 origin serving it (IndexedDB and Web Locks need a real origin). */
  origin: string;
  /** Opens a fresh page of the origin with the module loaded. */
  open(page: Page): Promise<void>;
  close(): Promise<void>;
}

/**
 * Bundles `contents` (an ES module source resolved from `resolveDir`) with esbuild for the
 * browser platform, serves it from 127.0.0.1 and opens it in headless Chromium.
 */
export async function bundleInChromium(
  contents: string,
  resolveDir: string,
): Promise<BundleInPage> {
  const result = await build({
    stdin: { contents, resolveDir, loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
  });
  const bundle = result.outputFiles[0]!.text;
  const server = createServer((req, res) => {
    if (req.url === '/lib.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(bundle);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        '<!doctype html><title>popkit</title><script type="module">import * as m from "/lib.js"; window.popkit = m;</script>',
      );
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await launchChromium();
  const open = async (page: Page) => {
    await page.goto(origin);
    await page.waitForFunction(() => (window as unknown as { popkit?: unknown }).popkit);
  };
  const page = await browser.newPage();
  await open(page);
  return {
    browser,
    page,
    bundle,
    origin,
    open,
    close: async () => {
      await browser.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
