// The `runtimes` group: the client's and verifier's WebCrypto branch measured where it runs.
// runtime-probe.ts is bundled with esbuild under each runtime's conditions and run inside
// headless Chromium (a page driven by playwright-core), Deno and Bun (their npm binaries, as in
// tests/runtimes); every round interleaves raw crypto.subtle.sign / verify with createProof /
// verifyProof in that one process. Hermes (the VM React Native ships, from hermes-engine-cli)
// has no WebCrypto: it reports proofs per second with a pure-JS stand-in for a hardware signer.
// A runtime whose binary is missing is skipped with a message; every process started is stopped.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Measured } from './harness.ts';
import type { ProbeOptions, ProbeResult } from './runtime-probe.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const runtimesBin = (name: string) => join(root, 'tests', 'runtimes', 'node_modules', '.bin', name);
const CHROMIUM = '/usr/bin/chromium';
const HERMES = join(
  root,
  'tests',
  'react-native',
  'node_modules',
  'hermes-engine-cli',
  'linux64-bin',
  'hermes',
);

/** The WebCrypto branch (package.json `imports` #crypto `default`), as a page bundles it. */
const WEB = ['browser', 'import', 'default'];
/** Deno's own conditions (its `deno` condition selects the WebCrypto branch too). */
const DENO = ['deno', 'node', 'import', 'default'];

export interface RuntimeResult {
  runtime: string;
  version: string;
  /** The #crypto branch the bundle took (client / verifier). */
  branch: string;
  measured: Measured[];
  pieces: Record<string, number>;
}

export interface HermesResult {
  version: string;
  /** proofs/s of each round. */
  rounds: number[];
}

async function bundle(entry: string, conditions: string[], format: 'esm' | 'iife') {
  const result = await build({
    stdin: { contents: entry, resolveDir: here, loader: 'ts' },
    bundle: true,
    format,
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions,
    external: ['node:*'],
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs);
  const branch = (pkg: string) =>
    inputs.some((i) => i.includes(`${pkg}/src/crypto/node.ts`))
      ? 'node:crypto'
      : inputs.some((i) => i.includes(`${pkg}/src/crypto/web.ts`))
        ? 'WebCrypto'
        : 'none';
  return {
    code: result.outputFiles[0]!.text,
    branch: `${branch('dpop-client')} / ${branch('dpop-verifier')}`,
  };
}

const cliEntry = (options: ProbeOptions) =>
  `import { runProbe } from './runtime-probe.ts';
console.log(JSON.stringify(await runProbe(${JSON.stringify(options)})));`;

/** Runs a CLI runtime on a bundle, stopping it on timeout; the last stdout line is the JSON. */
function runCli(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim().split('\n').pop()!);
      else reject(new Error(`${command} exited ${code ?? signal}: ${err.slice(-2000)}`));
    });
  });
}

export async function cliRuntime(
  runtime: 'deno' | 'bun',
  options: ProbeOptions,
  log: (s: string) => void,
): Promise<RuntimeResult | undefined> {
  const bin = runtimesBin(runtime);
  if (!existsSync(bin)) {
    log(`\n*** ${runtime} not found at ${bin}: its runtimes rows SKIPPED (pnpm install) ***\n`);
    return undefined;
  }
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' })
    .trim()
    .split('\n')[0]!
    .replace(/^deno /, '')
    .replace(/ \(.*/, '');
  // Bun's own conditions would take the node:crypto branch; WebCrypto is what is measured here.
  const { code, branch } = await bundle(cliEntry(options), runtime === 'deno' ? DENO : WEB, 'esm');
  const work = mkdtempSync(join(tmpdir(), `popkit-bench-${runtime}-`));
  try {
    const file = join(work, 'probe.mjs');
    writeFileSync(file, code);
    const args = runtime === 'deno' ? ['run', '--allow-all', '--quiet', file] : ['run', file];
    const line = await runCli(bin, args, timeoutFor(options));
    const result = JSON.parse(line) as ProbeResult;
    return { runtime: runtime === 'deno' ? 'Deno' : 'Bun', version, branch, ...result };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const timeoutFor = (o: ProbeOptions) => 120_000 + o.rounds * o.ms * 4 * 3;

export async function chromiumRuntime(
  options: ProbeOptions,
  log: (s: string) => void,
): Promise<RuntimeResult | undefined> {
  if (!existsSync(CHROMIUM)) {
    log(
      `\n*** ${CHROMIUM} not found: Chromium runtimes rows SKIPPED (apt-get install chromium) ***\n`,
    );
    return undefined;
  }
  // playwright-core is a root devDependency of the workspace
  const require = createRequire(join(root, 'package.json'));
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  const { code, branch } = await bundle(
    `import { runProbe } from './runtime-probe.ts';
(globalThis as { __popkitProbe?: unknown }).__popkitProbe = runProbe;`,
    WEB,
    'iife',
  );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage();
    // a secure context (http://127.0.0.1 is potentially trustworthy) served without a server
    const origin = 'http://127.0.0.1:9/';
    await page.route(`${origin}**`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><script>${code.replace(/<\/script/g, '<\\/script')}</script>`,
      }),
    );
    await page.goto(origin);
    page.setDefaultTimeout(timeoutFor(options));
    const result = (await page.evaluate(
      (o) =>
        (
          globalThis as unknown as { __popkitProbe: (o: unknown) => Promise<unknown> }
        ).__popkitProbe(o),
      options,
    )) as ProbeResult;
    return { runtime: 'Chromium (headless)', version: browser.version(), branch, ...result };
  } finally {
    await browser.close();
  }
}

/** The Hermes app: a stand-in hardware signer (@noble/curves P-256 returning DER, as in
 * tests/react-native), the `react-native` branch; rounds of proofs per second on the VM. */
const hermesEntry = (options: ProbeOptions) => `
import { p256 } from '@noble/curves/nist.js';
import { createProof } from '@popkit/dpop-client';
const out = (v) => print(JSON.stringify(v));
// Stand-ins for what an app installs (react-native-get-random-values; TextEncoder for noble on
// the npm VM, which predates it). Bench only: this generator is not a CSPRNG.
let seed = 0x9e3779b9;
globalThis.crypto = {
  getRandomValues(bytes) {
    for (let i = 0; i < bytes.length; i++) {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      bytes[i] = seed & 255;
    }
    return bytes;
  },
};
if (typeof globalThis.TextEncoder !== 'function') {
  globalThis.TextEncoder = class TextEncoder {
    encode(text) {
      const s = unescape(encodeURIComponent(text));
      const o = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) o[i] = s.charCodeAt(i);
      return o;
    }
  };
}
const secret = new Uint8Array(32).map((_, i) => i + 1);
const point = p256.getPublicKey(secret, false);
const b64 = (bytes) => {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const v = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += A[v >> 18] + A[(v >> 12) & 63];
    if (i + 1 < bytes.length) s += A[(v >> 6) & 63];
    if (i + 2 < bytes.length) s += A[v & 63];
  }
  return s;
};
const signer = {
  alg: 'ES256',
  publicJwk: { kty: 'EC', crv: 'P-256', x: b64(point.slice(1, 33)), y: b64(point.slice(33)) },
  signatureEncoding: 'der',
  sign: async (input) => p256.sign(input, secret, { format: 'der', extraEntropy: false }),
};
const request = { method: 'GET', url: 'https://rs.example.com/api/orders' };
async function main() {
  const rounds = [];
  for (let i = 0; i < 20; i++) await createProof(signer, request); // warm-up
  for (let r = 0; r < ${options.rounds}; r++) {
    let n = 0;
    const start = Date.now();
    while (Date.now() - start < ${options.ms}) {
      await createProof(signer, request);
      n++;
    }
    rounds.push((n * 1000) / (Date.now() - start));
  }
  out({ rounds });
}
main().then(undefined, (e) => out({ error: String(e && e.stack) }));
`;

export async function hermesRuntime(
  options: ProbeOptions,
  log: (s: string) => void,
): Promise<HermesResult | undefined> {
  if (!existsSync(HERMES)) {
    log(`\n*** ${HERMES} not found: the Hermes row SKIPPED (pnpm install) ***\n`);
    return undefined;
  }
  const rn = join(root, 'tests', 'react-native');
  const fromRn = createRequire(join(rn, 'package.json'));
  const version =
    /Hermes release version: (\S+)/.exec(
      execFileSync(HERMES, ['-version'], { encoding: 'utf8' }),
    )?.[1] ?? '?';
  // esbuild resolves with Metro's `react-native` condition; Babel then lowers what the npm VM
  // lacks (classes, private fields), as Metro's default profile does.
  const result = await build({
    stdin: { contents: hermesEntry(options), resolveDir: join(rn, 'app'), loader: 'js' },
    bundle: true,
    format: 'iife',
    platform: 'neutral',
    conditions: ['react-native'],
    mainFields: ['react-native', 'browser', 'module', 'main'],
    target: 'es2016', // async functions to generators (the npm VM has those)
    write: false,
    logLevel: 'silent',
  });
  const babel = fromRn('@babel/core') as {
    transformSync(code: string, options: Record<string, unknown>): { code?: string | null } | null;
  };
  const fromPreset = createRequire(fromRn.resolve('@react-native/babel-preset'));
  const lowered = babel.transformSync(result.outputFiles[0]!.text, {
    babelrc: false,
    configFile: false,
    compact: true,
    sourceType: 'script',
    // the transforms of React Native's preset the npm VM needs (the rest esbuild did above)
    plugins: [
      'transform-class-properties',
      'transform-private-methods',
      'transform-classes',
      'transform-block-scoping',
    ].map((name) => fromPreset.resolve(`@babel/plugin-${name}`)),
  })!.code!;
  const work = mkdtempSync(join(tmpdir(), 'popkit-bench-hermes-'));
  try {
    const file = join(work, 'probe.js');
    writeFileSync(file, lowered);
    const line = JSON.parse(await runCli(HERMES, [file], timeoutFor(options))) as {
      rounds?: number[];
      error?: string;
    };
    if (!line.rounds) throw new Error(`Hermes: ${line.error}`);
    return { version, rounds: line.rounds };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
