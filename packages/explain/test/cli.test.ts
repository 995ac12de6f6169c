// The command line as a user runs it: `npx popkit` from the repository root, a raw HTTP request
// or a curl command on stdin, usage errors (exit 2), and the text output.
import { describe, expect, it } from 'vitest';
import type { Explanation } from '../src/explain.ts';
import { API_URL, JWKS, NOW, OTHER_CLIENT, buildFixtures } from '../fixtures/fixtures.ts';
import { BIN, ROOT, cliArgs, run } from './helpers.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { blockBody, generatedBlocks } from '../scripts/readme-output.ts';

const byName = new Map(buildFixtures().map((f) => [f.name, f]));
const htu = byName.get('htu')!;

describe('popkit explain', () => {
  it('the README shows the real output of the CLI (pnpm --filter @popkit/explain run readme)', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Debugging a rejection'));
    const blocks = generatedBlocks(section);
    expect(blocks.map((b) => `${b.kind} ${b.fixture}`)).toEqual([
      'cli htu',
      'cli iat_too_old',
      'cli token_audience',
      'log htu',
    ]);
    for (const block of blocks) {
      if (block.kind === 'log') {
        // the verifier's explain: 'log' line, from a real process (console.warn: stderr)
        const script = fileURLToPath(new URL('../scripts/log-line.ts', import.meta.url));
        const cwd = fileURLToPath(new URL('..', import.meta.url));
        const log = await run('node', ['--import', 'tsx', script, block.fixture], undefined, cwd);
        expect(log.code).toBe(0);
        expect(block.body, `${block.fixture}: the README log line is stale`).toBe(
          blockBody(block, log.stderr),
        );
        continue;
      }
      const args = cliArgs(byName.get(block.fixture)!);
      const out = await run(
        BIN,
        block.step === undefined ? args.filter((a) => a !== '--json') : args,
      );
      expect(out.code).toBe(1);
      expect(block.body, `${block.fixture}: the README output is stale`).toBe(
        blockBody(block, out.stdout),
      );
    }
  });

  it('npx popkit explain --help works from the repository root', async () => {
    const help = await run('npx', ['--no-install', 'popkit', 'explain', '--help'], undefined, ROOT);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: popkit explain');
    const json = await run('npx', ['--no-install', 'popkit', ...cliArgs(htu)], undefined, ROOT);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as Explanation).reason).toBe('htu');
  });

  it('reads a raw HTTP request from stdin', async () => {
    const http = [
      'GET /orders?page=2 HTTP/1.1',
      'Host: api.example.com',
      `Authorization: ${htu.request.authorization[0]}`,
      `DPoP: ${htu.request.dpop[0]}`,
      'Accept: application/json',
      '',
      '',
    ].join('\r\n');
    const r = await run(BIN, ['explain', '--json', '--now', NOW, '-'], http);
    expect(r.code).toBe(1);
    const e = JSON.parse(r.stdout) as Explanation;
    expect(e.reason).toBe('htu');
    expect(e.steps.find((s) => s.step === 9)!.expected).toBe(API_URL);
    // two DPoP header lines are two fields: check 1
    const twice = http.replace('Accept:', `DPoP: ${htu.request.dpop[0]}\r\nAccept:`);
    const r2 = await run(BIN, ['explain', '--json', '--now', NOW, '-'], twice);
    expect((JSON.parse(r2.stdout) as Explanation).reason).toBe('multiple_proofs');
  });

  it('reads a curl command line from stdin', async () => {
    const ok = byName.get('ok')!;
    const curl = `curl -sS \\\n  -H 'Authorization: ${ok.request.authorization[0]}' \\\n  -H "DPoP: ${ok.request.dpop[0]}" \\\n  '${API_URL}'\n`;
    const r = await run(BIN, ['explain', '--json', '--now', NOW, '-'], curl);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const e = JSON.parse(r.stdout) as Explanation;
    expect(e.ok).toBe(true);
    // a POST (-d) with the GET proof: check 8
    const post = curl.replace('curl -sS', "curl -sS -d 'a=1'");
    const r2 = await run(BIN, ['explain', '--json', '--now', NOW, '-'], post);
    expect(r2.code).toBe(1);
    expect((JSON.parse(r2.stdout) as Explanation).reason).toBe('htm');
  });

  it('--public-url: the server expects its public URL, not the internal one', async () => {
    const ok = byName.get('ok')!;
    const args = cliArgs(ok).map((a) => (a === API_URL ? 'http://orders.internal:8080/orders' : a));
    const behind = await run(BIN, args);
    expect((JSON.parse(behind.stdout) as Explanation).reason).toBe('htu');
    const fixed = await run(BIN, [...args, '--public-url', 'https://api.example.com']);
    expect(fixed.code).toBe(0);
  });

  it('--jwks verifies the token signature; without it the output says it did not', async () => {
    const ok = byName.get('ok')!;
    const without = JSON.parse((await run(BIN, cliArgs(ok))).stdout) as Explanation;
    expect(without.token!.signature).toMatch(/not verified/);
    const dir = mkdtempSync(join(tmpdir(), 'popkit-explain-'));
    try {
      const file = join(dir, 'jwks.json');
      writeFileSync(file, JSON.stringify(JWKS));
      const r = await run(BIN, [...cliArgs(ok), '--jwks', file]);
      expect(r.code).toBe(0);
      const e = JSON.parse(r.stdout) as Explanation;
      expect(e.token!.signature).toBe('verified with the JWKS given');
      expect(e.steps.find((s) => s.step === 'token')!.status).toBe('passed');
      // another issuer's key set: the token is refused
      const other = { keys: [{ ...JWKS.keys[0]!, x: OTHER_CLIENT.jwk.x }] };
      writeFileSync(file, JSON.stringify(other));
      const bad = await run(BIN, [...cliArgs(ok), '--jwks', file]);
      expect(bad.code).toBe(1);
      expect((JSON.parse(bad.stdout) as Explanation).reason).toMatch(/^token_/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--jwks also takes the JWKS URL', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(JWKS));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
      const r = await run(BIN, [...cliArgs(byName.get('ok')!), '--jwks', url]);
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as Explanation).token!.signature).toBe(
        'verified with the JWKS given',
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('prints text with the fix by default, and usage errors exit 2', async () => {
    const args = cliArgs(byName.get('iat_too_old')!).filter((a) => a !== '--json');
    const r = await run(BIN, args);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL 11 .*\[iat_too_old\]/);
    expect(r.stdout).toContain("`iat` is 900 s before the server's time");
    expect(r.stdout).toMatch(/ -- +replay .*\n.*not checked offline/);
    for (const bad of [
      ['explain', '--url', API_URL],
      ['explain', '--method', 'GET', '--url', '/relative'],
      ['explain', '--method', 'GET', '--url', API_URL, '--now', 'yesterday'],
      ['explain', '--bogus'],
      ['frobnicate'],
    ]) {
      const u = await run(BIN, bad);
      expect([bad, u.code]).toEqual([bad, 2]);
      expect(u.stderr).toContain('Usage: popkit explain');
    }
  });
});
