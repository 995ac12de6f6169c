// Durable Object replay store under workerd (tests/runtimes/test/durable-object.test.ts): one
// module for every service. The "replay" service exports the objects; workers "a" and "b",
// each its own isolate, share its namespace through their REPLAY binding.
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import type {
  DurableObjectNamespaceLike,
  DurableObjectStateLike,
} from '@popkit/dpop-verifier/durable-object';
import {
  DEFAULT_SHARDS,
  DPoPReplayObject,
  DurableObjectReplayStore,
} from '@popkit/dpop-verifier/durable-object';
import type { DPoPAuthEnv } from '@popkit/dpop-verifier/hono';
import { dpopAuth } from '@popkit/dpop-verifier/hono';
import { Hono } from 'hono';

interface Env {
  REPLAY: DurableObjectNamespaceLike & { idFromName(name: string): unknown };
  ODD: DurableObjectNamespaceLike;
  INSTANCE: string;
  PUBLIC_URL: string;
}

/** The store's object, with a debug route counting its storage keys (entries and index). */
export class TestReplayObject extends DPoPReplayObject {
  readonly #state: DurableObjectStateLike;
  constructor(state: DurableObjectStateLike, env: unknown) {
    super(state, env);
    this.#state = state;
  }
  override async fetch(request: Request): Promise<Response> {
    if (new URL(request.url).pathname === '/debug/count') {
      const all = await this.#state.storage.list({ prefix: '', limit: 100_000 });
      return Response.json({ keys: all.size, alarm: await this.#state.storage.getAlarm() });
    }
    return super.fetch(request);
  }
}

/** An object that misbehaves by key: slow, a wrong answer, an error status, a throw. */
export class OddObject {
  async fetch(request: Request): Promise<Response> {
    const { key } = (await request.json()) as { key: string };
    if (key.startsWith('slow')) await new Promise((r) => setTimeout(r, 3000));
    if (key.startsWith('yes')) return new Response('{"first":"yes"}');
    if (key.startsWith('500')) return new Response('{"first":true}', { status: 500 });
    if (key.startsWith('throw')) throw new Error('the object broke');
    return new Response('{"first":true}');
  }
}

let app: Hono<DPoPAuthEnv & { Bindings: Env }> | undefined;

function build(env: Env) {
  const replay = new DurableObjectReplayStore({ namespace: env.REPLAY });
  // one object for everything: its alarm must delete more than one batch per run
  const single = new DurableObjectReplayStore({ namespace: env.REPLAY, shards: 1 });
  const odd = new DurableObjectReplayStore({ namespace: env.ODD, timeout: 300 });
  const api = new Hono<DPoPAuthEnv & { Bindings: Env }>();
  api.use(
    '/api/*',
    dpopAuth({
      // tokens are "tok.<jkt>" here: the binding and the replay store are what is exercised
      accessToken: (token) => ({ cnf: { jkt: token.slice(4) } }),
      publicUrl: env.PUBLIC_URL,
      replay,
    }),
  );
  api.get('/api/me', (c) => c.json({ jkt: c.get('auth').jkt, instance: c.env.INSTANCE }));
  const use =
    (store: DurableObjectReplayStore) => async (c: { req: { json(): Promise<unknown> } }) => {
      const { key, expiresAt } = (await c.req.json()) as { key: string; expiresAt: number };
      try {
        return Response.json({ first: await store.useOnce(key, expiresAt) });
      } catch (e) {
        const { name, reason } = e as { name?: string; reason?: string };
        return Response.json({ error: name, reason }, { status: 503 });
      }
    };
  api.post('/use', use(replay));
  api.post('/odd', use(odd));
  api.post('/use1', use(single));
  api.get('/count', async (c) => {
    let keys = 0;
    for (let n = 0; n < DEFAULT_SHARDS; n++) {
      const stub = c.env.REPLAY.get(c.env.REPLAY.idFromName(`popkit-replay-${n}`)) as unknown as {
        fetch(url: string): Promise<Response>;
      };
      keys += ((await (await stub.fetch('https://debug/debug/count')).json()) as { keys: number })
        .keys;
    }
    return c.json({ keys });
  });
  api.get('/memory', (c) => {
    new MemoryReplayStore({ maxEntries: 16, singleInstance: c.req.query('single') === '1' });
    return c.json({ built: true });
  });
  return api;
}

export default {
  fetch(request: Request, env: Env, ctx: unknown) {
    app ??= build(env);
    return app.fetch(request, env, ctx as never);
  },
};
