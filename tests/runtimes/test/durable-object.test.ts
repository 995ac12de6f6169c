// DurableObjectReplayStore and DPoPReplayObject under the real workerd binary (from its npm
// package): two Worker services, each its own isolate, bound to ONE Durable Object namespace
// (stored on a temporary local disk), driven over HTTP from Node. Also the MemoryReplayStore
// warning on Workers (issue 24, item 5).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
const WORKERD = join(here, 'node_modules', '.bin', 'workerd');
// the npm package's binary (a devDependency of tests/runtimes; its install script fetches it)
const available = requireBinary(
  WORKERD,
  'pnpm install --frozen-lockfile (tests/runtimes devDependency "workerd"; allow its build script)',
);
const PUBLIC_URL = 'https://api.example';
let work: string;
let child: ChildProcess | undefined;
let output = '';
const base: Record<'a' | 'b', string> = { a: '', b: '' };

/** Posts one use of `key` to a worker; its answer (`first`, or the error). */
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
const counts = async () =>
  (await (await fetch(`${base.a}/count`)).json()) as { keys: number; entries: number };
const count = async (): Promise<number> => (await counts()).keys;
/** Sets every shard's storage (through Worker b: the mode lives in the objects). */
const mode = async (m: 'ok' | 'slow' | 'down') => {
  const r = await fetch(`${base.b}/debug/mode?m=${m}`, { method: 'POST' });
  expect(r.status).toBe(200);
};
/** The garbage kinds of GarbageObject (suite/replay-do.ts). */
const GARBAGE = ['string', 'number', 'padded', 'extra', 'empty', 'bare', 'html', '201', '500'];
GARBAGE.push('404', 'throw');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two ReplayStore instances sharing one state (for the shared contract suite): a and b. */
export function makeStores(): [ReplayStore, ReplayStore] {
  return [remoteStore(() => `${base.a}/use`), remoteStore(() => `${base.b}/use`)];
}

beforeAll(async () => {
  if (!available) return;
  work = mkdtempSync(join(tmpdir(), 'popkit-do-'));
  const [pa, pb] = [await freePort(), await freePort()];
  base.a = `http://127.0.0.1:${pa}`;
  base.b = `http://127.0.0.1:${pb}`;
  await build({
    entryPoints: [join(here, 'suite', 'replay-do.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['workerd', 'worker', 'browser', 'import', 'default'],
    external: ['node:*'],
    target: 'es2022',
    outfile: join(work, 'replay-do.js'),
    logLevel: 'silent',
  });
  const front = (name: string) => `const ${name} :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "replay-do.js") ],
  compatibilityDate = "2025-01-01",
  bindings = [
    (name = "REPLAY", durableObjectNamespace = (className = "TestReplayObject", serviceName = "replay")),
    (name = "ODD", durableObjectNamespace = (className = "OddObject", serviceName = "replay")),
    (name = "GARBAGE", durableObjectNamespace = (className = "GarbageObject", serviceName = "replay")),
    (name = "INSTANCE", text = "${name}"),
    (name = "PUBLIC_URL", text = "${PUBLIC_URL}"),
  ],
);`;
  writeFileSync(
    join(work, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "replay", worker = .replay),
    (name = "a", worker = .a),
    (name = "b", worker = .b),
    (name = "disk", disk = (path = "${join(work, 'do')}", writable = true)),
  ],
  sockets = [
    (name = "a", address = "127.0.0.1:${pa}", http = (), service = "a"),
    (name = "b", address = "127.0.0.1:${pb}", http = (), service = "b"),
  ],
);
const replay :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "replay-do.js") ],
  compatibilityDate = "2025-01-01",
  durableObjectNamespaces = [
    (className = "TestReplayObject", uniqueKey = "popkit-replay-test"),
    (className = "OddObject", uniqueKey = "popkit-odd-test"),
    (className = "GarbageObject", uniqueKey = "popkit-garbage-test"),
  ],
  durableObjectStorage = (localDisk = "disk"),
);
${front('a')}
${front('b')}
`,
  );
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(work, 'do'));
  // its own process group: `.bin/workerd` is a shim that starts the real binary (see
  // runtimes.test.ts); the whole group is killed after
  child = spawn(WORKERD, ['serve', '--verbose', join(work, 'config.capnp')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await waitForListening(pa, child, 'workerd', () => output, 200);
  await waitForListening(pb, child, 'workerd', () => output, 200);
});

afterAll(async () => {
  if (child?.pid !== undefined) {
    const c = child;
    const exited = new Promise<void>((r) =>
      c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()),
    );
    try {
      process.kill(-c.pid!, 'SIGKILL'); // the whole group: the shim and the binary
    } catch {
      // already gone
    }
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!available)(
  'DurableObjectReplayStore under workerd: two Workers, one namespace',
  () => {
    it('accepts each key exactly once while both Workers race 64 uses in flight', async () => {
      const started = performance.now();
      let accepted = 0;
      const ROUNDS = 8;
      const KEYS = 8; // 64 in flight: 8 keys x 8 uses, half to each Worker
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
        expect(answers.filter((a) => a.first === undefined)).toEqual([]); // no errors
        for (const key of keys)
          expect(answers.filter((a) => a.key === key && a.first === true)).toHaveLength(1);
        accepted += answers.filter((a) => a.first).length;
      }
      expect(accepted).toBe(ROUNDS * KEYS);
      console.log(
        `durable-object race: ${ROUNDS * KEYS * 8} uses (64 in flight, two Workers), ${accepted} first uses, ${Math.round(performance.now() - started)} ms`,
      );
    });

    it('refuses a key until its expiresAt, from either Worker, and accepts it after', async () => {
      const key = `life-${Math.random()}`;
      const expiresAt = Date.now() + 1500;
      expect(await use('a', key, expiresAt)).toEqual({ first: true });
      expect(await use('b', key, expiresAt + 60_000)).toEqual({ first: false });
      expect(await use('a', key, expiresAt + 60_000)).toEqual({ first: false });
      while (Date.now() < expiresAt - 150) {
        expect(await use('b', key, expiresAt + 60_000)).toEqual({ first: false });
        await sleep(100);
      }
      await sleep(Math.max(0, expiresAt - Date.now()) + 50);
      expect(await use('b', key, Date.now() + 60_000)).toEqual({ first: true });
      expect(await use('a', key, Date.now() + 60_000)).toEqual({ first: false });
    });

    it('keeps storage bounded: the alarms delete every expired entry', async () => {
      const before = await count();
      const expiresAt = Date.now() + 7000;
      // all in one object (shards: 1): 600 index keys, more than one alarm run of 4 x 128
      const N = 300;
      const started = performance.now();
      const answers = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          use(i % 2 ? 'a' : 'b', `bounded-${i}-${Math.random()}`, expiresAt, '/use1'),
        ),
      );
      const took = performance.now() - started;
      expect(took).toBeLessThan(6500); // (else the entries expire before they are counted)
      expect(answers.every((a) => a.first === true)).toBe(true);
      expect(await count()).toBe(before + 2 * N); // two storage keys per live entry
      // everything from before expires too (the earlier tests' entries live 60 s: not these)
      const deadline = Date.now() + 15_000;
      let left = Infinity;
      while (Date.now() < deadline) {
        await sleep(250);
        left = await count();
        if (left <= before) break;
      }
      expect(left).toBe(before);
      console.log(
        `durable-object storage: ${N} uses into one object in ${Math.round(took)} ms; ${before + 2 * N} keys -> ${left} ${Math.round(Date.now() - expiresAt)} ms after the expiry`,
      );
    });

    it('fails closed: a slow object, a wrong answer, an error status, a throwing object', async () => {
      const at = Date.now() + 60_000;
      for (const key of ['slow-1', 'yes-1', '500-1', 'throw-1'])
        expect([key, await use('a', key, at, '/odd')]).toEqual([
          key,
          { error: 'ReplayStoreError', reason: 'replay_store_error' },
        ]);
      expect(await use('a', 'fine-1', at, '/odd')).toEqual({ first: true }); // the control
    });

    it('a captured proof raced at both Workers through dpopAuth (hono) is accepted once', async () => {
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
        Array.from({ length: 32 }, (_, i) =>
          fetch(`${i % 2 ? base.a : base.b}/api/me`, { headers }),
        ),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 401)).toHaveLength(31);
      for (const r of responses.filter((r) => r.status === 401))
        expect(r.headers.get('www-authenticate')).toMatch(/already been used/);
    });
  },
);

describe.skipIf(!available)('MemoryReplayStore on workerd', () => {
  it('warns once that Workers run many isolates, unless singleInstance: true', async () => {
    const warning =
      /MemoryReplayStore remembers proofs in this isolate only, but Cloudflare Workers/g;
    await fetch(`${base.a}/memory?single=1`);
    await sleep(300);
    expect(output.match(warning)).toBeNull();
    await fetch(`${base.a}/memory`);
    await fetch(`${base.a}/memory`);
    await sleep(300);
    expect(output.match(warning)).toHaveLength(1);
    expect(output).toMatch(/DurableObjectReplayStore from @popkit\/dpop-verifier\/durable-object/);
  });
});

describe.skipIf(!available)('DurableObjectReplayStore: the shared contract', () => {
  // Two Worker services (each its own isolate) bound to one namespace under workerd: the real
  // DurableObjectReplayStore and DPoPReplayObject run there; Node drives them through
  // remote-store.ts. A Durable Object's backend is its storage, so the faults are the storage's:
  // "slow" holds every storage call of every shard, "down" makes every storage call throw (no
  // separate process to SIGSTOP or kill: workerd hosts the objects and the Workers alike, and
  // killing it would test only the Node-side driver). "garbage" is the real store over objects
  // answering each kind of wrong answer (suite/replay-do.ts, GarbageObject).
  replayStoreContract(
    'DurableObjectReplayStore under workerd (two Workers, one namespace)',
    async () => {
      const [a, b] = makeStores();
      return {
        a: a!,
        b: b!,
        size: async () => (await counts()).entries,
        lateMs: 0,
        // the store's timeout (1 s) plus two Workers and an HTTP hop, on a loaded machine
        slowMs: 2500,
        fillMs: 12_000, // 2,000 uses over HTTP into workerd, 64 in flight
        faults: {
          pause: async () => {
            await mode('slow');
            return () => mode('ok');
          },
          down: async () => {
            await mode('down');
            return () => mode('ok');
          },
          garbage: () =>
            GARBAGE.map((kind, i) =>
              remoteStore(() => `${i % 2 ? base.a : base.b}/garbage/${kind}`),
            ),
        },
        close: async () => undefined, // workerd is stopped by this file's afterAll
      };
    },
    { withFaults: true },
  );
});
