// Browser bundle sizes: esbuild (minified, browser platform) then gzip -9.
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface BundleSize {
  name: string;
  minified: number;
  gzipped: number;
}

async function size(name: string, contents: string, reactNative = false): Promise<BundleSize> {
  const result = await build({
    // React Native: Metro's resolution (the `react-native` condition: the pure SHA-256 branch).
    ...(reactNative
      ? { conditions: ['react-native'], mainFields: ['react-native', 'browser', 'module', 'main'] }
      : {}),
    stdin: { contents, resolveDir: fileURLToPath(new URL('..', import.meta.url)), loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    treeShaking: true,
  });
  const bytes = result.outputFiles[0]!.contents;
  return { name, minified: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length };
}

export async function bundleSizes(): Promise<BundleSize[]> {
  return [
    await size(
      '@popkit/dpop-client: createProof only',
      `export { createProof } from '@popkit/dpop-client';`,
    ),
    await size(
      '@popkit/dpop-client: createProof + thumbprint + createDPoPFetch',
      `export { createProof, thumbprint, createDPoPFetch } from '@popkit/dpop-client';`,
    ),
    await size(
      '@popkit/dpop-client: everything (core + /browser)',
      `export * from '@popkit/dpop-client'; export * from '@popkit/dpop-client/browser';`,
    ),
    await size(
      '@popkit/dpop-client, React Native (`react-native` condition, pure SHA-256): createProof + thumbprint + createDPoPFetch',
      `export { createProof, thumbprint, createDPoPFetch } from '@popkit/dpop-client';`,
      true,
    ),
    await size('dpop (panva): everything', `export * from 'dpop';`),
  ];
}
