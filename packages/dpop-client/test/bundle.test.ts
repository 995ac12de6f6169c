import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

/** The modules a browser bundle of `contents` (esbuild, tree-shaken) keeps. */
async function modulesOf(contents: string): Promise<string[]> {
  const result = await build({
    stdin: { contents, resolveDir: fileURLToPath(new URL('..', import.meta.url)), loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
  });
  const [output] = Object.values(result.metafile.outputs);
  return Object.entries(output!.inputs)
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path.replace(/^.*\/src\//, ''));
}

describe('what a page that only signs proofs ships', () => {
  it('createProof alone keeps no fetch, challenge, date, nonce-store or React Native code', async () => {
    const kept = await modulesOf(`export { createProof } from './src/index.ts';`);
    expect(kept).toContain('proof.ts');
    expect(kept).toContain('crypto/web.ts');
    // what only createDPoPFetch and the errors it throws need (a DPoPClientError's `server`
    // answer is read by the code that has the response, not by the error class)
    for (const module of [
      'fetch.ts',
      'session.ts',
      'server-answer.ts',
      'challenge.ts',
      'http-date.ts',
      'nonce-store.ts',
      'token-expiry.ts',
      'redirect.ts',
      'crypto/sha256.ts',
      'crypto/native.ts',
      'wire-url.ts',
    ])
      expect(kept).not.toContain(module);
  });
});
