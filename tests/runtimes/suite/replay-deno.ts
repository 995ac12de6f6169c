// DenoKvReplayStore under Deno (tests/runtimes/test/deno-kv.test.ts): one HTTP server per
// process, every process opening the same local KV file (KV_PATH). Run with --unstable-kv.
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import type { DenoKvLike } from '@popkit/dpop-verifier/deno-kv';
import { DenoKvReplayStore } from '@popkit/dpop-verifier/deno-kv';
import type { DPoPAuthEnv } from '@popkit/dpop-verifier/hono';
import { dpopAuth } from '@popkit/dpop-verifier/hono';
import { Hono } from 'hono';

declare const Deno: {
  env: { get(name: string): string | undefined };
  openKv(path: string): Promise<
    DenoKvLike & {
      close(): void;
      set(key: unknown[], value: unknown): Promise<unknown>;
      list(selector: { prefix: unknown[] }): AsyncIterable<unknown>;
    }
  >;
  serve(
    options: { port: number; hostname: string; onListen(): void },
    handler: (request: Request) => Response | Promise<Response>,
  ): unknown;
};

const KV_PATH = Deno.env.get('KV_PATH')!;
const PREFIX = ['popkit', 'dpop', 'jti'];
/**
 * The database the store uses, behind a handle the contract's "down" fault can close (every
 * call then fails as on a database that is gone) and reopen: the store holds this object, as a
 * deployment holds its `Deno.Kv`.
 */
let current = await Deno.openKv(KV_PATH);
const kv: DenoKvLike = {
  get: (key) => current.get(key),
  atomic: () => current.atomic(),
};
// 2 s, not the default 1 s: two processes on one SQLite file at 64 in flight, on a loaded test
// machine, sometimes take longer, and the store then (rightly) refuses
const replay = new DenoKvReplayStore({ kv, timeout: 2000 });
/** The write lock another connection holds on the KV file (the contract's "slow" fault). */
let lock: { exec(sql: string): void; close(): void } | undefined;
// a database closed under the store: every call must fail closed
const closedKv = await Deno.openKv(Deno.env.get('KV_PATH')!);
closedKv.close();
const closed = new DenoKvReplayStore({ kv: closedKv });

const app = new Hono<DPoPAuthEnv>();
app.use(
  '/api/*',
  dpopAuth({
    // tokens are "tok.<jkt>" here: the binding and the replay store are what is exercised
    accessToken: (token) => ({ cnf: { jkt: token.slice(4) } }),
    publicUrl: Deno.env.get('PUBLIC_URL')!,
    replay,
  }),
);
app.get('/api/me', (c) => c.json({ jkt: c.get('auth').jkt, instance: Deno.env.get('INSTANCE') }));
/** One use through `store`: its answer, or its typed refusal as a 503 (remote-store.ts). */
async function answer(store: DenoKvReplayStore, key: string, expiresAt: number) {
  try {
    return Response.json({ first: await store.useOnce(key, expiresAt) });
  } catch (e) {
    const { name, reason, message, cause } = e as {
      name?: string;
      reason?: string;
      message?: string;
      cause?: unknown;
    };
    if (name !== 'ReplayStoreError') console.error(`store error: ${message} (${String(cause)})`);
    return Response.json({ error: name, reason, message }, { status: 503 });
  }
}
type Use = { key: string; expiresAt: number };
const use = (store: DenoKvReplayStore) => async (c: { req: { json(): Promise<unknown> } }) => {
  const { key, expiresAt } = (await c.req.json()) as Use;
  return answer(store, key, expiresAt);
};
app.post('/use', use(replay));
app.post('/closed', use(closed));
// the raw KV entry (is an expired entry still there, not yet collected?)
app.get('/raw', async (c) => {
  const entry = await kv.get([...PREFIX, c.req.query('key')!]);
  return c.json({ value: entry.value, versionstamp: entry.versionstamp });
});
// entries the database holds under the store's prefix, live or expired but not yet collected
app.get('/count', async (c) => {
  let entries = 0;
  for await (const _ of current.list({ prefix: PREFIX })) entries++;
  return c.json({ entries });
});
// "down": the database this process's store uses is closed under it; "up": opened again
app.post('/debug/down', (c) => (current.close(), c.json({ down: true })));
app.post('/debug/up', async (c) => {
  current = await Deno.openKv(KV_PATH);
  return c.json({ down: false });
});
// "slow": another connection takes SQLite's write lock on the KV file and holds it (KV's own
// connection then waits for it, up to its busy timeout): the database stops answering writes
app.post('/debug/lock', async (c) => {
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(KV_PATH) as unknown as NonNullable<typeof lock>;
  for (let i = 0; ; i++) {
    try {
      db.exec('BEGIN EXCLUSIVE');
      break;
    } catch (e) {
      if (i > 200) throw e; // (a KV write in progress: try again)
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  lock = db;
  return c.json({ locked: true });
});
app.post('/debug/unlock', (c) => {
  lock?.exec('COMMIT');
  lock?.close();
  lock = undefined;
  return c.json({ locked: false });
});
// Garbage. Deno KV cannot be made to answer garbage over its own protocol (the local client is
// linked into deno, the answers are typed), so the nearest honest equivalents: (1) the real
// database holding a value the store never writes under the key (a foreign writer, a corrupted
// or migrated entry), and (2) a Deno.Kv-shaped object answering wrong shapes (a buggy wrapper,
// an API change): the store must refuse, never accept, in both.
const STORED: Record<string, unknown> = {
  string: 'x',
  object: {},
  null: null,
  nan: Number.NaN,
  infinity: Number.POSITIVE_INFINITY,
  boolean: true,
  bigint: 1n,
  bytes: new Uint8Array(1),
};
for (const [kind, value] of Object.entries(STORED)) {
  const store = new DenoKvReplayStore({ kv });
  app.post(`/garbage/stored-${kind}`, async (c) => {
    const { key, expiresAt } = (await c.req.json()) as Use;
    await current.set([...PREFIX, key], value);
    return answer(store, key, expiresAt);
  });
}
const ANSWERS: Record<string, DenoKvLike> = {
  'get-null': { get: async () => null as never, atomic: () => current.atomic() },
  'get-empty': { get: async () => ({}) as never, atomic: () => current.atomic() },
  'get-throws-sync': {
    get: () => {
      throw new Error('broken');
    },
    atomic: () => current.atomic(),
  },
  ...Object.fromEntries(
    ['yes', 1, null, undefined, 'object'].map((ok) => [
      `commit-${String(ok)}`,
      {
        get: (key: Parameters<DenoKvLike['get']>[0]) => current.get(key),
        atomic: () => {
          const op = current.atomic();
          const wrapped = {
            check: (...checks: Parameters<typeof op.check>) => (op.check(...checks), wrapped),
            set: (...args: Parameters<typeof op.set>) => (op.set(...args), wrapped),
            commit: async () => (ok === 'object' ? {} : { ok }) as never,
          };
          return wrapped;
        },
      } satisfies DenoKvLike,
    ]),
  ),
};
for (const [kind, answers] of Object.entries(ANSWERS))
  app.post(`/garbage/${kind}`, use(new DenoKvReplayStore({ kv: answers })));
app.get('/memory', (c) => {
  new MemoryReplayStore({ maxEntries: 16, singleInstance: c.req.query('single') === '1' });
  return c.json({ built: true });
});

Deno.serve(
  {
    port: Number(Deno.env.get('PORT')),
    hostname: '127.0.0.1',
    onListen: () => console.error('listening'),
  },
  app.fetch,
);
