// The MCP helpers of the client without the SDK: withDPoP's choices on a real local server
// (which requests it signs, which Bearer tokens it rewrites, the SDK-readable challenge),
// withDpopJkt, dpopClientMetadata, chooseAlgorithm, and the Node key file.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DPoPClientError, generateKeyPair, thumbprint } from '../src/index.ts';
import {
  chooseAlgorithm,
  chooseAlgorithmFrom,
  dpopClientMetadata,
  withDPoP,
  withDpopJkt,
} from '../src/mcp/index.ts';
import { deleteKeyFile, loadOrCreateKeyFile } from '../src/mcp/node-key-store.ts';

interface Seen {
  path: string;
  scheme: string | undefined;
  dpop: boolean;
}

let server: Server;
let base: string;
const seen: Seen[] = [];
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'popkit-mcp-client-'));
  server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push({
      path: url.pathname,
      scheme: req.headers.authorization?.split(' ')[0],
      dpop: typeof req.headers.dpop === 'string',
    });
    req.resume();
    res.setHeader('content-type', 'application/json');
    if (url.pathname === '/.well-known/oauth-authorization-server')
      return res.end(
        JSON.stringify({
          token_endpoint: `${base}/oauth/token`,
          registration_endpoint: `${base}/reg`,
        }),
      );
    if (url.pathname === '/oauth/token')
      return res.end(
        JSON.stringify({
          access_token: url.searchParams.get('t') ?? 'dpop-token',
          token_type: 'DPoP',
        }),
      );
    if (url.pathname === '/bearer-token')
      return res.end(JSON.stringify({ access_token: 'plain-token', token_type: 'Bearer' }));
    if (url.pathname === '/step-up') {
      res.statusCode = 403;
      res.setHeader(
        'www-authenticate',
        'DPoP error="insufficient_scope", scope="a b", resource_metadata="https://rs/.well-known/x", algs="ES256"',
      );
      return res.end('{}');
    }
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const form = () => new URLSearchParams({ grant_type: 'client_credentials' }) as unknown as BodyInit;

describe('withDPoP', () => {
  it('signs token requests, rewrites only DPoP-issued tokens, leaves discovery and registration', async () => {
    const key = await generateKeyPair();
    const f = withDPoP(key)(fetch);
    seen.length = 0;
    await f(`${base}/.well-known/oauth-authorization-server`);
    await f(`${base}/reg`, { method: 'POST', body: '{}' });
    await (await f(`${base}/oauth/token`, { method: 'POST', body: '{}' })).text();
    await (await f(`${base}/bearer-token`, { method: 'POST', body: form() })).text();
    await f(`${base}/mcp`, { headers: { authorization: 'Bearer dpop-token' } });
    await f(`${base}/mcp`, { headers: { authorization: 'Bearer plain-token' } });
    await f(`${base}/mcp`, { headers: { authorization: 'Bearer never-seen' } });
    expect(seen).toEqual([
      { path: '/.well-known/oauth-authorization-server', scheme: undefined, dpop: false },
      { path: '/reg', scheme: undefined, dpop: false },
      // the token endpoint from the metadata, even with a body that is not a form
      { path: '/oauth/token', scheme: undefined, dpop: true },
      // a form POST with grant_type is a token request anywhere; its Bearer token stays Bearer
      { path: '/bearer-token', scheme: undefined, dpop: true },
      { path: '/mcp', scheme: 'DPoP', dpop: true },
      { path: '/mcp', scheme: 'Bearer', dpop: false },
      { path: '/mcp', scheme: 'Bearer', dpop: false },
    ]);
  });

  it('rewrites a token the provider holds as DPoP (a restarted client)', async () => {
    const key = await generateKeyPair();
    const provider = { tokens: () => ({ access_token: 'stored', token_type: 'dpop' }) };
    const f = withDPoP(key, { provider })(fetch);
    seen.length = 0;
    await f(`${base}/mcp`, { headers: { authorization: 'Bearer stored' } });
    await f(`${base}/mcp`, { headers: { authorization: 'Bearer other' } });
    expect(seen.map((s) => s.scheme)).toEqual(['DPoP', 'Bearer']);
  });

  it('shows a DPoP-only challenge to the SDK as Bearer too (or not, when asked)', async () => {
    const key = await generateKeyPair();
    const shown = await withDPoP(key)(fetch)(`${base}/step-up`);
    expect(shown.status).toBe(403);
    expect(shown.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_scope", scope="a b", resource_metadata="https://rs/.well-known/x", ' +
        'DPoP error="insufficient_scope", scope="a b", resource_metadata="https://rs/.well-known/x", algs="ES256"',
    );
    const raw = await withDPoP(key, { sdkChallenge: false })(fetch)(`${base}/step-up`);
    expect(raw.headers.get('www-authenticate')).toMatch(/^DPoP /);
  });

  it('checks its arguments', () => {
    expect(() => withDPoP(null as never)).toThrow(TypeError);
    expect(() => withDPoP({} as never, { provider: {} as never })).toThrow(/provider/);
  });
});

describe('authorization request, registration, algorithm', () => {
  it('withDpopJkt adds the thumbprint, dpopClientMetadata the registration member', async () => {
    const key = await generateKeyPair();
    const url = await withDpopJkt('https://as.example/authorize?client_id=c', key);
    expect(url.searchParams.get('dpop_jkt')).toBe(await thumbprint(key));
    expect(url.searchParams.get('client_id')).toBe('c');
    expect(dpopClientMetadata()).toEqual({ dpop_bound_access_tokens: true });
  });

  it('chooseAlgorithm picks the first preference every document lists', () => {
    expect(chooseAlgorithm()).toBe('ES256');
    expect(chooseAlgorithm({}, undefined)).toBe('ES256');
    expect(chooseAlgorithm({ dpop_signing_alg_values_supported: ['RS256', 'EdDSA'] })).toBe(
      'EdDSA',
    );
    expect(
      chooseAlgorithm(
        { dpop_signing_alg_values_supported: ['ES256', 'PS256'] },
        { dpop_signing_alg_values_supported: ['PS256', 'RS256'] },
      ),
    ).toBe('PS256');
    expect(() => chooseAlgorithm({ dpop_signing_alg_values_supported: ['HS256'] })).toThrow(
      /no DPoP algorithm/,
    );
    expect(
      chooseAlgorithmFrom(
        [{ dpop_signing_alg_values_supported: ['ES256', 'RS256'] }],
        ['RS256', 'ES256'],
      ),
    ).toBe('RS256');
  });
});

describe('loadOrCreateKeyFile', () => {
  it('creates a 0600 file once and loads the same key afterwards', async () => {
    const path = join(dir, 'a', 'key.json');
    const first = await loadOrCreateKeyFile(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'a')).mode & 0o777).toBe(0o700);
    expect(first.keyPair.privateKey.extractable).toBe(false);
    const again = await loadOrCreateKeyFile(path);
    expect([again.created, again.jkt]).toEqual([false, first.jkt]);
    await deleteKeyFile(path);
    expect((await loadOrCreateKeyFile(path)).jkt).not.toBe(first.jkt);
  });

  it('agrees on one key when several starts race', async () => {
    const path = join(dir, 'race', 'key.json');
    const all = await Promise.all(Array.from({ length: 5 }, () => loadOrCreateKeyFile(path)));
    expect(new Set(all.map((k) => k.jkt)).size).toBe(1);
    expect(all.filter((k) => k.created).length).toBe(1);
  });

  it('encrypts with a passphrase and refuses a wrong one, a readable file, a foreign file', async () => {
    const path = join(dir, 'enc', 'key.json');
    const made = await loadOrCreateKeyFile(path, { passphrase: 'correct horse', alg: 'EdDSA' });
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain('"d"');
    expect(JSON.parse(text)).toMatchObject({ alg: 'EdDSA', encrypted: { kdf: 'scrypt' } });
    const loaded = await loadOrCreateKeyFile(path, { passphrase: 'correct horse' });
    expect(loaded.jkt).toBe(made.jkt);
    const code = async (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: unknown) => (e instanceof DPoPClientError ? `${e.code}: ${e.message}` : String(e)),
      );
    expect(await code(loadOrCreateKeyFile(path, { passphrase: 'wrong' }))).toMatch(
      /^ERR_DPOP_STORAGE: the key file cannot be decrypted/,
    );
    expect(await code(loadOrCreateKeyFile(path))).toMatch(/encrypted: pass "passphrase"/);
    chmodSync(path, 0o644);
    expect(await code(loadOrCreateKeyFile(path, { passphrase: 'correct horse' }))).toMatch(
      /accessible to other users/,
    );
    const foreign = join(dir, 'enc', 'foreign.json');
    writeFileSync(foreign, '{"hello":1}', { mode: 0o600 });
    expect(await code(loadOrCreateKeyFile(foreign))).toMatch(/not a popkit DPoP key file/);
  });
});
