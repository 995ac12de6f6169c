// The offline page in real headless Chromium, opened from file://: `window.popkitExplain` gives
// every fixture the same explanation as the CLI (spawned), and the page makes no network
// request at all (every request the browser makes is recorded; only the file itself loads).
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH, launchChromium } from '../../../test-support/chromium.ts';
import type { Explanation } from '../src/explain.ts';
import { buildFixtures } from '../fixtures/fixtures.ts';
import { BIN, cliArgs, explainInput, pool, run } from './helpers.ts';
// @ts-expect-error: a plain .mjs script without types
import { buildPage } from '../scripts/build-page.mjs';

const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);
const PAGE = fileURLToPath(new URL('../page/index.html', import.meta.url));
const fixtures = buildFixtures();

describe.skipIf(!available)('the offline page, in real headless Chromium', () => {
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];
  const cli = new Map<string, Explanation>();

  beforeAll(async () => {
    const outputs = await pool(fixtures, 6, (f) => run(BIN, cliArgs(f)));
    fixtures.forEach((f, i) => cli.set(f.name, JSON.parse(outputs[i]!.stdout) as Explanation));
    browser = await launchChromium();
    const context = await browser.newContext();
    context.on('request', (r) => requests.push(r.url()));
    // anything but the page itself is refused (and recorded above)
    await context.route('**/*', (route) =>
      route.request().url() === pathToFileURL(PAGE).href ? route.continue() : route.abort(),
    );
    page = await context.newPage();
    await page.goto(pathToFileURL(PAGE).href);
    await page.waitForFunction(() => typeof window.popkitExplain === 'function');
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('page/index.html is built from the current sources', async () => {
    expect(
      readFileSync(PAGE, 'utf8') === (await buildPage()),
      'page/index.html is stale (the explain or verifier sources changed): run `pnpm --filter @popkit/explain run build:page`',
    ).toBe(true);
  });

  it.each(fixtures.map((f) => [f.name, f] as const))(
    '%s: the same explanation as the CLI',
    async (_name, fixture) => {
      const input = explainInput(fixture);
      const result = await page.evaluate((i) => window.popkitExplain(i), input);
      expect(result.reason).toBe(fixture.reason);
      expect(result).toEqual(cli.get(fixture.name));
    },
  );

  it('the form explains a pasted request, and no request ever left the page', async () => {
    const htu = fixtures.find((f) => f.name === 'htu')!;
    const raw = [
      'GET /orders HTTP/1.1',
      'Host: api.example.com',
      `Authorization: ${htu.request.authorization[0]}`,
      `DPoP: ${htu.request.dpop[0]}`,
    ].join('\n');
    await page.fill('#raw', raw);
    await page.fill('#now', htu.request.now);
    await page.click('#explain');
    await expect
      .poll(() => page.textContent('#verdict'))
      .toBe('Rejected: invalid_dpop_proof (reason htu) at check 9.');
    expect(await page.textContent('tr.failed')).toContain('set `publicUrl` on the server');
    expect(requests).toEqual([pathToFileURL(PAGE).href]);
  });
});
