// DenoKvReplayStore under the real deno binary (from its npm package): TWO deno processes open
// the same local KV file (in a temporary directory) and serve HTTP; Node races them. Also the
// MemoryReplayStore warning on Deno Deploy (DENO_DEPLOYMENT_ID set for one process).
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { freePort } from '@popkit/example-shared/redis';
import type { ReplayStore } from '@popkit/dpop-verifier';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary, waitForListening } from '../../../test-support/binaries.ts';
import { replayStoreContract } from '../../../packages/dpop-verifier/test/replay-contract.ts';
import { remoteStore } from './remote-store.ts';

const here = fileURLToPath(new URL('..', import.meta.url));
const DENO = join(here, 'node_modules', '.bin', 'deno');
// the npm package's binary (a devDependency of tests/runtimes; its install script fetches it)
const available = requireBinary(
  DENO,
  'pnpm install --frozen-lockfile (tests/runtimes devDependency "deno"; allow its build script)',
);
const PUBLIC_URL = 'https://api.example';
let work: string;
const children: ChildProcess[] = [];
const output: Record<'a' | 'b', string> = { a: '', b: '' };
const base: Record<'a' | 'b', string> = { a: '', b: '' };

async function use(
  to: 'a' | 'b',
  key: string,
  expiresAt: number,
  path = '/use',
): Promise<{ first?: boolean; reason?: string }> {
  const r = await fetch(`${base[to]}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, expiresAt }),
  });
  return (await r.json()) as { first?: boolean; reason?: string };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const post = async (to: 'a' | 'b', path: string) => {
  const r = await fetch(`${base[to]}${path}`, { method: 'POST' });
  expect(r.status, output[to]).toBe(200);
};
/** The garbage routes of suite/replay-deno.ts: stored values, then wrong answers. */
const GARBAGE = [
  ...['string', 'object', 'null', 'nan', 'infinity', 'boolean', 'bigint', 'bytes'].map(
    (kind) => `stored-${kind}`,
  ),
  'get-null',
  'get-empty',
  'get-throws-sync',
  ...['yes', '1', 'null', 'undefined', 'object'].map((ok) => `commit-${ok}`),
];

/** Two ReplayStore instances sharing one state (for the shared contract suite): a and b. */
export function makeStores(): [ReplayStore, ReplayStore] {
  return [remoteStore(() => `${base.a}/use`), remoteStore(() => `${base.b}/use`)];
}

beforeAll(async () => {
  if (!available) return;
  work = mkdtempSync(join(tmpdir(), 'popkit-kv-'));
  await build({
    entryPoints: [join(here, 'suite', 'replay-deno.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['deno', 'node', 'import', 'default'],
    external: ['node:*'],
    target: 'es2022',
    outfile: join(work, 'replay-deno.mjs'),
    logLevel: 'silent',
  });
  for (const name of ['a', 'b'] as const) {
    const port = await freePort();
    base[name] = `http://127.0.0.1:${port}`;
    // its own process group, killed whole after (`.bin/deno` may be a shim)
    const child = spawn(
      DENO,
      ['run', '--allow-all', '--unstable-kv', '--quiet', join(work, 'replay-deno.mjs')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        cwd: work,
        env: {
          ...process.env,
          KV_PATH: join(work, 'replay.sqlite'),
          PORT: String(port),
          INSTANCE: name,
          PUBLIC_URL,
          // process "a" believes it runs on Deno Deploy
          ...(name === 'a' ? { DENO_DEPLOYMENT_ID: 'popkit-test' } : {}),
        },
      },
    );
    child.stdout!.on('data', (d) => (output[name] += d));
    child.stderr!.on('data', (d) => (output[name] += d));
    children.push(child);
    await waitForListening(port, child, `deno ${name}`, () => output[name], 200);
  }
});

afterAll(async () => {
  for (const c of children) {
    if (c.pid === undefined) continue;
    const exited = new Promise<void>((r) =>
      c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()),
    );
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!available)('DenoKvReplayStore under deno: two processes, one KV file', () => {
  it('accepts each key exactly once while both processes race 64 uses in flight', async () => {
    const version = execFileSync(DENO, ['--version'], { encoding: 'utf8' }).split('\n')[0];
    const started = performance.now();
    let accepted = 0;
    const ROUNDS = 8;
    const KEYS = 8; // 64 in flight: 8 keys x 8 uses, half to each process
    for (let round = 0; round < ROUNDS; round++) {
      const keys = Array.from({ length: KEYS }, (_, i) => `race-${round}-${i}-${Math.random()}`);
      const expiresAt = Date.now() + 60_000;
      const [a, b] = makeStores();
      const answers = await Promise.all(
        keys.flatMap((key) =>
          Array.from({ length: 8 }, (_, j) =>
            Promise.resolve((j % 2 === 0 ? a : b).useOnce(key, expiresAt)).then(
              (first) => ({ key, first }),
              (e: Error) => ({ key, first: undefined, error: e.message }),
            ),
          ),
        ),
      );
      expect(
        answers.filter((a) => a.first === undefined),
        output.a + output.b,
      ).toEqual([]); // no errors
      for (const key of keys)
        expect(answers.filter((a) => a.key === key && a.first === true)).toHaveLength(1);
      accepted += answers.filter((a) => a.first).length;
    }
    expect(accepted).toBe(ROUNDS * KEYS);
    console.log(
      `deno-kv race (${version}): ${ROUNDS * KEYS * 8} uses (64 in flight, two processes), ${accepted} first uses, ${Math.round(performance.now() - started)} ms`,
    );
  });

  it('refuses a key until its expiresAt, accepts it after though KV still holds the expired entry', async () => {
    const key = `life-${Math.random()}`;
    const expiresAt = Date.now() + 1500;
    expect(await use('a', key, expiresAt)).toEqual({ first: true });
    expect(await use('b', key, expiresAt + 60_000)).toEqual({ first: false });
    while (Date.now() < expiresAt - 150) {
      expect(await use(Math.random() < 0.5 ? 'a' : 'b', key, expiresAt + 60_000)).toEqual({
        first: false,
      });
      await sleep(100);
    }
    await sleep(Math.max(0, expiresAt - Date.now()) + 50);
    // expired, not collected: KV's own expiry comes later (lazily, with a margin)
    const raw = (await (await fetch(`${base.b}/raw?key=${key}`)).json()) as { value: number };
    expect(raw.value).toBe(expiresAt);
    // both processes race the first use after expiry: one wins
    const next = Date.now() + 60_000;
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) => use(i % 2 ? 'a' : 'b', key, next)),
    );
    expect(answers.filter((a) => a.first === true)).toHaveLength(1);
    expect(answers.filter((a) => a.first === false)).toHaveLength(15);
  });

  it('fails closed when KV fails (a closed database): 503 replay_store_error', async () => {
    expect(await use('a', `closed-${Math.random()}`, Date.now() + 60_000, '/closed')).toMatchObject(
      {
        error: 'ReplayStoreError',
        reason: 'replay_store_error',
      },
    );
  });

  it('a captured proof raced at both processes through dpopAuth (hono) is accepted once', async () => {
    const key = await generateKeyPair();
    const token = `tok.${await thumbprint(key)}`;
    const headers = {
      authorization: `DPoP ${token}`,
      dpop: await createProof(key, {
        method: 'GET',
        url: `${PUBLIC_URL}/api/me`,
        accessToken: token,
      }),
    };
    const responses = await Promise.all(
      Array.from({ length: 32 }, (_, i) => fetch(`${i % 2 ? base.a : base.b}/api/me`, { headers })),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(31);
    for (const r of responses.filter((r) => r.status === 401))
      expect(r.headers.get('www-authenticate')).toMatch(/already been used/);
  });
});

describe.skipIf(!available)('MemoryReplayStore on Deno', () => {
  it('warns once on Deno Deploy (DENO_DEPLOYMENT_ID), unless singleInstance: true; not on plain Deno', async () => {
    const warning = /MemoryReplayStore remembers proofs in this isolate only, but Deno Deploy/g;
    await fetch(`${base.a}/memory?single=1`);
    await fetch(`${base.b}/memory`);
    await sleep(300);
    expect(output.a.match(warning)).toBeNull();
    expect(output.b.match(warning)).toBeNull(); // plain Deno: one process, no warning
    await fetch(`${base.a}/memory`);
    await fetch(`${base.a}/memory`);
    await sleep(300);
    expect(output.a.match(warning)).toHaveLength(1);
    expect(output.a).toMatch(/DenoKvReplayStore from @popkit\/dpop-verifier\/deno-kv/);
  });
});

describe.skipIf(!available)('DenoKvReplayStore: the shared contract', () => {
  // Two deno processes on one local KV file: the real DenoKvReplayStore runs in each; Node
  // drives them through remote-store.ts. Local KV has no server process to SIGSTOP or kill, so
  // the faults are the database's own: "slow" is another connection holding SQLite's write lock
  // on the file (KV's writes wait for it), "down" closes the database under both processes'
  // stores (then opens it again). "garbage": see suite/replay-deno.ts (values the store never
  // writes, stored in the real database under the key; and Deno.Kv-shaped wrong answers).
  replayStoreContract(
    'DenoKvReplayStore under deno (two processes, one KV file)',
    async () => {
      const [a, b] = makeStores();
      return {
        a: a!,
        b: b!,
        size: async () =>
          ((await (await fetch(`${base.a}/count`)).json()) as { entries: number }).entries,
        lateMs: 0,
        // refused exactly until expiresAt, but KV removes the entry only once its expireIn
        // (expiresAt + the store's 60 s margin) has passed, at its next sweep (every 60 s)
        collectMs: 125_000,
        fillMs: 12_000,
        slowMs: 3500, // the store's timeout there is 2 s (suite/replay-deno.ts)
        faults: {
          pause: async () => {
            await post('a', '/debug/lock');
            return () => post('a', '/debug/unlock');
          },
          down: async () => {
            await Promise.all([post('a', '/debug/down'), post('b', '/debug/down')]);
            return async () =>
              void (await Promise.all([post('a', '/debug/up'), post('b', '/debug/up')]));
          },
          garbage: () =>
            GARBAGE.map((kind, i) =>
              remoteStore(() => `${i % 2 ? base.a : base.b}/garbage/${kind}`),
            ),
        },
        close: async () => undefined, // the processes are stopped by this file's afterAll
      };
    },
    { withFaults: true, timeout: 240_000 },
  );
});
