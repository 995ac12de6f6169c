// Pack and consume, as a new user would: `pnpm pack` the three packages, install the tarballs
// with npm into a fresh consumer, and use them with plain `node` (no tsx), `require()`, two
// TypeScript resolution modes (and the stated minimum TypeScript), a Vite browser build, publint
// and @arethetypeswrong/cli. And `@popkit/explain` with its dependency tarballs in another
// fresh project: `npx popkit explain` runs its built JavaScript with plain node.
import { execFileSync, spawnSync } from 'node:child_process';
import type { ExecFileSyncOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['dpop-client', 'dpop-verifier', 'mtls-binding'] as const;
/** The minimum TypeScript the README states for consumers. */
const MIN_TYPESCRIPT = '5.0.4';

let work: string;
let consumer: string;
let explainConsumer: string;
const tarballs: Record<string, string> = {};
let explainTarball: string;

/**
 * The environment without the variables the package manager running the tests set
 * (`npm_config_*`, `npm_lifecycle_*`, …): npm must behave as it does for a user, e.g. report
 * itself as npm rather than inherit pnpm's user agent.
 */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(npm|pnpm)_/i.test(k)),
  ) as NodeJS.ProcessEnv;

const run = (command: string, args: string[], options: ExecFileSyncOptions = {}): string =>
  execFileSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 240_000,
    ...options,
    env: { ...cleanEnv(), npm_config_update_notifier: 'false', ...options.env },
  }) as string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'popkit-pack-'));
  for (const name of PACKAGES) {
    const dir = join(ROOT, 'packages', name);
    run('pnpm', ['pack', '--pack-destination', work], { cwd: dir });
  }
  run('pnpm', ['pack', '--pack-destination', work], { cwd: join(ROOT, 'packages', 'explain') });
  for (const file of readdirSync(work)) {
    const name = PACKAGES.find((p) => file.startsWith(`popkit-${p}-`));
    if (name) tarballs[name] = join(work, file);
    if (file.startsWith('popkit-explain-')) explainTarball = join(work, file);
  }
  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify(
      {
        name: 'consumer',
        private: true,
        type: 'module',
        dependencies: {
          '@popkit/dpop-client': `file:${tarballs['dpop-client']}`,
          '@popkit/dpop-verifier': `file:${tarballs['dpop-verifier']}`,
          '@popkit/mtls-binding': `file:${tarballs['mtls-binding']}`,
          express: '^5.1.0',
          jose: '^6.1.0',
          '@opentelemetry/api': '^1.9.0',
        },
        // what a Node + Express consumer has anyway (types of the frameworks it uses)
        devDependencies: {
          typescript: MIN_TYPESCRIPT,
          '@types/node': '^20.19.0',
          '@types/express': '^5.0.0',
        },
      },
      null,
      2,
    ),
  );
  // npm, not pnpm: what most consumers use; node-forge and undici (optional peers) left out
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: consumer });
  // a fresh project with only @popkit/explain (and the tarballs of its own dependencies)
  explainConsumer = join(work, 'explain-consumer');
  mkdirSync(explainConsumer);
  writeFileSync(
    join(explainConsumer, 'package.json'),
    JSON.stringify({
      name: 'explain-consumer',
      private: true,
      devDependencies: {
        '@popkit/explain': `file:${explainTarball}`,
        '@popkit/dpop-client': `file:${tarballs['dpop-client']}`,
        '@popkit/dpop-verifier': `file:${tarballs['dpop-verifier']}`,
      },
    }),
  );
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: explainConsumer,
  });
}, 480_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const listTarball = (file: string) => run('tar', ['-tzf', file]).split('\n').filter(Boolean);

describe('pnpm pack, then npm install in a fresh consumer', () => {
  it('ships licence, changelog, dist (nothing stale) and manifests with real ranges', () => {
    for (const name of PACKAGES) {
      const files = listTarball(tarballs[name]!);
      expect(files, name).toEqual(
        expect.arrayContaining([
          'package/LICENSE',
          'package/CHANGELOG.md',
          'package/README.md',
          'package/dist/index.js',
          'package/dist/index.d.ts',
        ]),
      );
      const manifest = JSON.parse(
        run('tar', ['-xzOf', tarballs[name]!, 'package/package.json']),
      ) as Record<string, unknown> & { exports: Record<string, { default: string }> };
      const text = JSON.stringify(manifest);
      expect(text, name).not.toMatch(/workspace:|catalog:/);
      expect(manifest.exports['.']!.default, name).toBe('./dist/index.js');
      expect(manifest, name).toMatchObject({
        license: 'MIT',
        repository: expect.objectContaining({ type: 'git' }),
        homepage: expect.any(String),
        bugs: expect.any(Object),
        keywords: expect.any(Array),
        author: expect.any(String),
        publishConfig: expect.objectContaining({ access: 'public' }),
      });
      // what consumers run, and nothing else: no TypeScript sources (the source maps carry
      // them inline, so a stack trace or a debugger still shows the original)
      expect(
        files.filter(
          (f) => !/^package\/(dist\/.*|LICENSE|CHANGELOG\.md|README\.md|package\.json)$/.test(f),
        ),
        name,
      ).toEqual([]);
      expect(
        files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
        name,
      ).toBe(false);
      const map = JSON.parse(
        run('tar', ['-xzOf', tarballs[name]!, 'package/dist/index.js.map']),
      ) as {
        sources: string[];
        sourcesContent?: string[];
      };
      expect(map.sourcesContent?.length, name).toBe(map.sources.length);
      expect(map.sourcesContent?.[0], name).toMatch(/export/);
      // declaration files import .js, never .ts (TypeScript < 5 could not read them)
      const dts = run('tar', ['-xzOf', tarballs[name]!, 'package/dist/index.d.ts']);
      expect(dts, name).not.toMatch(/from '\.{1,2}\/[^']+\.ts'/);
    }
    const verifier = JSON.parse(
      run('tar', ['-xzOf', tarballs['dpop-verifier']!, 'package/package.json']),
    ) as { dependencies: Record<string, string> };
    expect(verifier.dependencies['@popkit/dpop-client']).toMatch(/^\^/);
    const mtls = JSON.parse(
      run('tar', ['-xzOf', tarballs['mtls-binding']!, 'package/package.json']),
    ) as { dependencies: Record<string, string>; peerDependenciesMeta: Record<string, unknown> };
    expect(Object.keys(mtls.dependencies)).not.toEqual(
      expect.arrayContaining(['node-forge', 'undici']),
    );
    expect(mtls.peerDependenciesMeta).toMatchObject({
      'node-forge': { optional: true },
      undici: { optional: true },
    });
  });

  it('npm pack and npm publish are refused with a clear message', () => {
    let message = '';
    try {
      run('npm', ['pack', '--dry-run'], { cwd: join(ROOT, 'packages', 'dpop-client') });
    } catch (e) {
      message = String((e as { stderr?: string }).stderr);
    }
    expect(message).toMatch(/packed and published with pnpm only/);
  });

  it('plain node: a client -> Express API round trip through a nonce challenge', () => {
    writeFileSync(
      join(consumer, 'roundtrip.mjs'),
      `
import { createServer } from 'node:http';
import { createDPoPFetch, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { MemoryReplayStore, createNonceIssuer } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import express from 'express';
const app = express();
const server = createServer(app);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = 'http://127.0.0.1:' + server.address().port;
app.use('/api', dpopAuth({
  accessToken: (token) => ({ cnf: { jkt: token.slice(4) } }),
  publicUrl: base,
  replay: new MemoryReplayStore(),
  nonces: createNonceIssuer({ secret: 'consumer-test-secret-of-32-bytes!!!' }),
}));
app.get('/api/me', (req, res) => res.json({ jkt: req.auth.jkt }));
const key = await generateKeyPair();
const events = [];
const dpopFetch = createDPoPFetch(key, { onEvent: (e) => events.push(e.type) });
const res = await dpopFetch(base + '/api/me', { accessToken: 'tok.' + (await thumbprint(key)) });
console.log(JSON.stringify({ status: res.status, body: await res.json(), retried: events.includes('retry'), jkt: await thumbprint(key) }));
server.close();
`,
    );
    const out = JSON.parse(run('node', ['roundtrip.mjs'], { cwd: consumer }).trim()) as {
      status: number;
      body: { jkt: string };
      retried: boolean;
      jkt: string;
    };
    expect(out.status).toBe(200);
    expect(out.retried).toBe(true);
    expect(out.body.jkt).toBe(out.jkt);
  });

  it('require() loads every entry point; optional peers missing give a clear error', () => {
    writeFileSync(
      join(consumer, 'require.cjs'),
      `
const entries = ['@popkit/dpop-client', '@popkit/dpop-client/browser', '@popkit/dpop-client/axios',
  '@popkit/dpop-client/mcp', '@popkit/dpop-client/mcp/node',
  '@popkit/dpop-verifier', '@popkit/dpop-verifier/express', '@popkit/dpop-verifier/fastify',
  '@popkit/dpop-verifier/hono', '@popkit/dpop-verifier/redis', '@popkit/dpop-verifier/durable-object',
  '@popkit/dpop-verifier/deno-kv', '@popkit/dpop-verifier/mcp', '@popkit/dpop-verifier/postgres',
  '@popkit/dpop-verifier/otel', '@popkit/mtls-binding', '@popkit/mtls-binding/node'];
const loaded = entries.map((e) => [e, Object.keys(require(e)).length]);
require('@popkit/mtls-binding/node').loadPkcs12(new Uint8Array([48, 3, 2, 1, 3]), 'x').then(
  () => console.log(JSON.stringify({ loaded, pkcs12: 'no error' })),
  (e) => console.log(JSON.stringify({ loaded, pkcs12: e.message })),
);
`,
    );
    const out = JSON.parse(run('node', ['require.cjs'], { cwd: consumer }).trim()) as {
      loaded: Array<[string, number]>;
      pkcs12: string;
    };
    for (const [entry, exports] of out.loaded) expect([entry, exports > 0]).toEqual([entry, true]);
    expect(out.pkcs12).toMatch(/optional peer dependency "node-forge".*npm install node-forge/);
  });

  for (const [mode, options] of [
    ['module nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }],
    ['moduleResolution bundler', { module: 'esnext', moduleResolution: 'bundler' }],
  ] as const) {
    it(`type-checks a consumer under ${mode}, with the newest and the minimum TypeScript (${MIN_TYPESCRIPT})`, () => {
      writeFileSync(
        join(consumer, 'consumer.ts'),
        `
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import type { DPoPAlgorithm } from '@popkit/dpop-client';
import { MemoryReplayStore, createDPoPAuth } from '@popkit/dpop-verifier';
import type { AuthResult } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import { certificateThumbprint } from '@popkit/mtls-binding';
import { certificateThumbprintSource } from '@popkit/mtls-binding/node';

const alg: DPoPAlgorithm = 'ES256';
export async function check(): Promise<string> {
  const key = await generateKeyPair(alg);
  const jkt: string = await thumbprint(key);
  const proof: string = await createProof(key, { method: 'GET', url: 'https://api.example/x' });
  // @ts-expect-error -- a number is not a method: fails only if the types really resolved
  await createProof(key, { method: 1, url: 'https://api.example/x' });
  const auth = createDPoPAuth({ accessToken: () => ({}), publicUrl: 'https://api.example', replay: new MemoryReplayStore() });
  const result: AuthResult = await auth.verify({ method: 'GET', url: '/x', headers: {} });
  // @ts-expect-error -- AuthResult has no such member
  result.nope;
  void dpopAuth; void certificateThumbprintSource;
  return jkt + proof + (await certificateThumbprint('x'));
}
`,
      );
      const tsconfig = {
        compilerOptions: {
          ...options,
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          lib: ['es2022', 'dom'],
          types: ['node'],
        },
        files: ['consumer.ts'],
      };
      writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(tsconfig));
      // the newest (the workspace's) and the stated minimum (installed in the consumer)
      const newest = join(ROOT, 'node_modules', '.bin', 'tsc');
      const minimum = join(consumer, 'node_modules', '.bin', 'tsc');
      for (const tsc of [newest, minimum]) {
        let output = '';
        try {
          output = run(tsc, ['-p', 'tsconfig.json'], { cwd: consumer });
        } catch (e) {
          output = `${(e as { stdout?: string }).stdout}${(e as { stderr?: string }).stderr}`;
        }
        expect([tsc, output.trim()]).toEqual([tsc, '']);
      }
      expect(run(minimum, ['-v'], { cwd: consumer })).toContain(MIN_TYPESCRIPT);
    });
  }

  it('a Vite page bundles the client with no node: import and no Buffer', () => {
    const page = join(consumer, 'page');
    mkdirSync(page, { recursive: true });
    writeFileSync(
      join(page, 'index.html'),
      '<!doctype html><script type="module" src="./main.js"></script>',
    );
    writeFileSync(
      join(page, 'main.js'),
      `import { createDPoPFetch, generateKeyPair } from '@popkit/dpop-client';
import { loadOrCreateKeyPair } from '@popkit/dpop-client/browser';
const { keyPair } = await loadOrCreateKeyPair('app');
window.dpopFetch = createDPoPFetch(keyPair ?? (await generateKeyPair()));
`,
    );
    const vite = join(ROOT, 'examples', 'browser-app', 'node_modules', '.bin', 'vite');
    run(vite, ['build', '--outDir', join(page, 'dist'), '--logLevel', 'error'], { cwd: page });
    const assets = join(page, 'dist', 'assets');
    const js = readdirSync(assets)
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(assets, f), 'utf8'))
      .join('\n');
    expect(js.length).toBeGreaterThan(1000);
    expect(js).not.toMatch(/["']node:/);
    expect(js).not.toMatch(/\bBuffer\b/);
  });

  it('publint and @arethetypeswrong/cli (ESM-only profile) find no problem', () => {
    const bin = (name: string) => join(ROOT, 'tests', 'package', 'node_modules', '.bin', name);
    for (const name of PACKAGES) {
      const dir = join(work, `unpacked-${name}`);
      mkdirSync(dir, { recursive: true });
      run('tar', ['-xzf', tarballs[name]!, '-C', dir]);
      const lint = run(bin('publint'), ['--strict', '--pack', 'false', join(dir, 'package')]);
      expect([name, lint]).toEqual([name, expect.not.stringMatching(/error|warning/i)]);
      const attw = run(bin('attw'), [
        tarballs[name]!,
        '--profile',
        'esm-only',
        '--format',
        'ascii',
      ]);
      expect([name, attw]).toEqual([name, expect.not.stringMatching(/❌|Error/)]);
    }
  });
});

describe('@popkit/explain from its packed tarball in a fresh project', () => {
  interface FixtureFile {
    reason: string | null;
    step: string | number | null;
    request: { method: string; url: string; dpop: string[]; authorization: string[]; now: string };
  }
  const fixture = (name: string) =>
    JSON.parse(
      readFileSync(join(ROOT, 'packages/explain/fixtures', `${name}.json`), 'utf8'),
    ) as FixtureFile;
  const npxExplain = (f: FixtureFile) => {
    const args = ['--no', 'popkit', 'explain', '--json', '--method', f.request.method];
    args.push('--url', f.request.url, '--now', f.request.now);
    for (const d of f.request.dpop) args.push('--dpop', d);
    for (const a of f.request.authorization) args.push('--authorization', a);
    return spawnSync('npx', args, {
      cwd: explainConsumer,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...cleanEnv(), npm_config_update_notifier: 'false' },
    });
  };

  it('ships the built CLI, the page and no TypeScript source; tsx is no dependency', () => {
    const files = listTarball(explainTarball);
    expect(files).toEqual(
      expect.arrayContaining([
        'package/bin/popkit.mjs',
        'package/dist/cli/main.js',
        'package/dist/index.js',
        'package/dist/index.d.ts',
        'package/page/index.html',
        'package/README.md',
        'package/LICENSE',
      ]),
    );
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    const manifest = JSON.parse(run('tar', ['-xzOf', explainTarball, 'package/package.json'])) as {
      dependencies: Record<string, string>;
      exports: Record<string, { default: string }>;
      bin: Record<string, string>;
    };
    expect(JSON.stringify(manifest)).not.toMatch(/workspace:|catalog:/);
    expect(Object.keys(manifest.dependencies).sort()).toEqual([
      '@popkit/dpop-client',
      '@popkit/dpop-verifier',
      'jose',
    ]);
    expect(manifest.exports['.']!.default).toBe('./dist/index.js');
    expect(manifest.bin).toEqual({ popkit: './bin/popkit.mjs' });
    // nothing installed that could run TypeScript: the bin runs dist/ with plain node
    expect(readdirSync(join(explainConsumer, 'node_modules'))).not.toContain('tsx');
  });

  it('npx popkit explain --json gives the verdict of a rejected and an accepted fixture', () => {
    for (const name of ['htu', 'ok']) {
      const f = fixture(name);
      const out = npxExplain(f);
      expect(out.stderr, name).toBe('');
      expect(out.status, name).toBe(f.reason === null ? 0 : 1);
      const explanation = JSON.parse(out.stdout) as {
        ok: boolean;
        reason: string | null;
        step: string | number | null;
      };
      expect(explanation, name).toMatchObject({
        ok: f.reason === null,
        reason: f.reason,
        step: f.step,
      });
    }
  });
});
