// React Native for real: an app entry using createDPoPFetch, createProof and thumbprint,
// bundled by Metro (the `react-native` condition, @react-native/babel-preset), run on the
// Hermes VM from npm (hermes-engine-cli) with React Native's own URL polyfill as the global, no
// crypto.subtle, crypto.getRandomValues as react-native-get-random-values installs it, and a
// stand-in hardware signer returning DER. Every proof it prints is verified here in Node with
// popkit's verifier, and its htu compared with the WHATWG serialisation (what goes on the wire).
// Writes test-results/runtimes/react-native.md (a row of the runtime table).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { thumbprint } from '@popkit/dpop-client';
import { verifyProof } from '@popkit/dpop-verifier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import { metroBundle } from '../build.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const HERMES = join(root, 'node_modules', 'hermes-engine-cli', 'linux64-bin', 'hermes');
const available = requireBinary(
  HERMES,
  'pnpm install (hermes-engine-cli ships linux64-bin/hermes, a static Linux x86-64 binary)',
);

/** Five spellings a React Native app may pass, each with a different wire form. */
const URLS = [
  'https://API.example.com:443/a/b',
  'HTTPS://Api.Example.COM/x/./y/../z',
  'http://api.example.com:80/p/%2e%2E/q?x=1#f',
  'https://api.example.com:8443/a/../b/./c/',
  'https://B\u00fccher.Example/p/caf\u00e9',
];
const TOKEN = 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU';

interface Line {
  type: string;
  ok?: boolean;
  value?: any;
  code?: string;
  name?: string;
  message?: string;
  env?: Record<string, unknown>;
}

const wire = (url: string) => {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
};
const claimsOf = (proof: string) =>
  JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString('utf8'));

describe.skipIf(!available)('React Native (Hermes, Metro bundle, hardware signer)', () => {
  let work: string;
  let version = '';
  const runs: Record<string, { lines: Line[]; bundleBytes: number; gzipBytes: number }> = {};

  function runApp(entry: 'with-random' | 'no-random', code: string): Line[] {
    const seed = [...randomBytes(16)].map((b, i) => b * (i + 1));
    const input = { secret: randomBytes(32).toString('hex'), urls: URLS, token: TOKEN };
    const file = join(work, `${entry}.run.js`);
    writeFileSync(
      file,
      `var __popkitTestSeed=${JSON.stringify(seed)};var __popkitTestInput=${JSON.stringify(input)};\n${code}`,
    );
    // spawnSync: the VM is ended (SIGKILL) if it outlives the timeout.
    const r = spawnSync(HERMES, [file], {
      encoding: 'utf8',
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    if (r.status !== 0) throw new Error(`hermes exited ${r.status}: ${r.stderr}\n${r.stdout}`);
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'popkit-rn-'));
    version =
      /Hermes release version: (\S+)/.exec(
        spawnSync(HERMES, ['-version'], { encoding: 'utf8' }).stdout,
      )?.[1] ?? '?';
    for (const entry of ['with-random', 'no-random'] as const) {
      const { code } = await metroBundle(
        join(root, 'app', `${entry}.js`),
        join(work, `${entry}.js`),
      );
      runs[entry] = {
        lines: runApp(entry, code),
        bundleBytes: Buffer.byteLength(code),
        gzipBytes: gzipSync(code).length,
      };
    }
  }, 240_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs in React Native’s environment: no crypto.subtle, RN’s URL polyfill, getRandomValues', () => {
    const { lines } = runs['with-random']!;
    expect(lines.at(-1)).toEqual({ type: 'done' });
    expect(lines[0]!.env).toMatchObject({
      subtle: false,
      getRandomValues: true,
      URL: 'as written (React Native)',
    });
  });

  it('thumbprint(signer) works without WebCrypto and matches Node’s', async () => {
    const lines = runs['with-random']!.lines;
    const jkt = lines.find((l) => l.type === 'thumbprint')!;
    expect(jkt.ok).toBe(true);
    const first = lines.find((l) => l.type === 'proof')!.value.proof as string;
    const jwk = JSON.parse(Buffer.from(first.split('.')[0]!, 'base64url').toString()).jwk;
    expect(jkt.value).toBe(await thumbprint(jwk));
  });

  it('wireHtu signs the WHATWG serialisation of every spelling (as the native stack sends it)', () => {
    const htus = runs['with-random']!.lines.filter((l) => l.type === 'wireHtu');
    expect(htus).toHaveLength(URLS.length);
    for (const l of htus) expect(l.value.htu).toBe(wire(l.value.url));
  });

  it('every proof (5 spellings, with and without an access token) verifies in Node', async () => {
    const lines = runs['with-random']!.lines;
    const jkt = lines.find((l) => l.type === 'thumbprint')!.value as string;
    const proofs = lines.filter((l) => l.type === 'proof');
    expect(proofs).toHaveLength(URLS.length * 2);
    for (const l of proofs) {
      expect(l.ok, l.message).toBe(true);
      const { url, token, proof } = l.value as { url: string; token?: string; proof: string };
      // wire-exact: the htu is byte for byte what a strict verifier sees on the request line
      expect(claimsOf(proof).htu).toBe(wire(url));
      const verified = await verifyProof(
        proof,
        { method: token ? 'POST' : 'GET', url: wire(url), accessToken: token, jkt },
        { replay: false },
      );
      expect(verified.jkt).toBe(jkt);
      if (token) expect(verified.claims.ath).toBeTypeOf('string');
    }
    const jtis = new Set(proofs.map((l) => claimsOf(l.value.proof).jti));
    expect(jtis.size).toBe(proofs.length);
  });

  it('createDPoPFetch: token, nonce challenge and the single retry, each proof verifying', async () => {
    const lines = runs['with-random']!.lines;
    const jkt = lines.find((l) => l.type === 'thumbprint')!.value as string;
    const f = lines.find((l) => l.type === 'fetch')!;
    expect(f.ok, f.message).toBe(true);
    expect(f.value.status).toBe(200);
    const sent = f.value.sent as Array<{
      url: string;
      method: string;
      dpop: string;
      authorization: string;
    }>;
    expect(sent).toHaveLength(2);
    for (const [i, s] of sent.entries()) {
      expect(s.authorization).toBe(`DPoP ${TOKEN}`);
      const verified = await verifyProof(
        s.dpop,
        {
          method: 'GET',
          url: wire(s.url),
          accessToken: TOKEN,
          jkt,
          ...(i === 1 ? { nonce: 'n-1' } : {}),
        },
        { replay: false },
      );
      expect(verified.claims.nonce).toBe(i === 1 ? 'n-1' : undefined);
    }
  });

  it('without react-native-get-random-values: the typed ERR_DPOP_NO_RANDOM, naming what to install', () => {
    const { lines } = runs['no-random']!;
    expect(lines[0]!.env).toMatchObject({ getRandomValues: false, subtle: false });
    expect(lines.find((l) => l.type === 'thumbprint')!.ok).toBe(true); // needs no randomness
    const failures = lines.filter((l) => l.type === 'proof' || l.type === 'fetch');
    expect(failures).toHaveLength(URLS.length * 2 + 1);
    for (const l of failures) {
      expect(l).toMatchObject({ ok: false, name: 'DPoPClientError', code: 'ERR_DPOP_NO_RANDOM' });
      expect(l.message).toContain('react-native-get-random-values');
      expect(l.message).toContain('expo-crypto');
    }
  });

  it('writes the React Native row of the runtime table', () => {
    const out = join(root, '..', '..', 'test-results', 'runtimes');
    mkdirSync(out, { recursive: true });
    const ok = runs['with-random']!.lines.filter((l) => l.type === 'proof' && l.ok).length;
    const { bundleBytes, gzipBytes } = runs['with-random']!;
    writeFileSync(
      join(out, 'react-native.md'),
      `| React Native (Hermes) | ${version} (hermes-engine-cli) | pure SHA-256 / (verified in Node) (the \`react-native\` condition) | ` +
        `Metro bundle (@react-native/babel-preset) of an app using createDPoPFetch, createProof, thumbprint, with React Native's URL polyfill, no crypto.subtle, react-native-get-random-values, a DER hardware signer: ${ok} proofs for ${URLS.length} URL spellings verified in Node with wire-exact htu; nonce retry; ERR_DPOP_NO_RANDOM without the polyfill | ` +
        `pass | app bundle ${(bundleBytes / 1024).toFixed(1)} KiB min, ${(gzipBytes / 1024).toFixed(1)} KiB gzip | n/a: a client |\n`,
    );
  });
});
