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
  openKv(path: string): Promise<DenoKvLike & { close(): void }>;
  serve(
    options: { port: number; hostname: string; onListen(): void },
    handler: (request: Request) => Response | Promise<Response>,
  ): unknown;
};

const kv = await Deno.openKv(Deno.env.get('KV_PATH')!);
const replay = new DenoKvReplayStore({ kv });
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
const use = (store: DenoKvReplayStore) => async (c: { req: { json(): Promise<unknown> } }) => {
  const { key, expiresAt } = (await c.req.json()) as { key: string; expiresAt: number };
  try {
    return Response.json({ first: await store.useOnce(key, expiresAt) });
  } catch (e) {
    const { name, reason, message, cause } = e as {
      name?: string;
      reason?: string;
      message?: string;
      cause?: unknown;
    };
    console.error(`store error: ${message} (${String(cause)})`);
    return Response.json({ error: name, reason }, { status: 503 });
  }
};
app.post('/use', use(replay));
app.post('/closed', use(closed));
// the raw KV entry (is an expired entry still there, not yet collected?)
app.get('/raw', async (c) => {
  const entry = await kv.get(['popkit', 'dpop', 'jti', c.req.query('key')!]);
  return c.json({ value: entry.value, versionstamp: entry.versionstamp });
});
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
