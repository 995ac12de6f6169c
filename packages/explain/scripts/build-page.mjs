#!/usr/bin/env node
// Builds page/index.html: page/page.ts (and the verifier's check modules, on WebCrypto) bundled
// by esbuild for the browser and inlined into page/template.html, one static file that works
// from file:// with no network. `--check` compares instead of writing (exit 1 when stale).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dir = fileURLToPath(new URL('../page/', import.meta.url));

/** The page's HTML, built from the sources. */
export async function buildPage() {
  const result = await build({
    entryPoints: [`${dir}page.ts`],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
  });
  const script = result.outputFiles[0].text.replaceAll('</script', '<\\/script');
  return readFileSync(`${dir}template.html`, 'utf8').replace('/*SCRIPT*/', () => script);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const html = await buildPage();
  const target = `${dir}index.html`;
  if (process.argv.includes('--check')) {
    if (readFileSync(target, 'utf8') !== html) {
      console.error('page/index.html is stale: pnpm --filter @popkit/explain run build:page');
      process.exit(1);
    }
  } else {
    writeFileSync(target, html);
    console.log(`wrote page/index.html (${html.length} bytes)`);
  }
}
