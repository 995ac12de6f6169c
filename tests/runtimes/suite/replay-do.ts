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
  GARBAGE: DurableObjectNamespaceLike;
  INSTANCE: string;
  PUBLIC_URL: string;
}

/** How the objects' storage behaves now, set per object by `/debug/mode` (the contract's faults). */
type Mode = 'ok' | 'slow' | 'down';

/**
 * The store's object over its real storage, with debug routes: counting its storage keys
 * (entries and index), and a fault mode for the shared contract suite. A Durable Object's
 * backend is its storage: `slow` holds every storage call until the mode changes (a storage
 * that stops answering), `down` makes every storage call throw (a storage that is gone); the
 * object itself is the real DPoPReplayObject, and it must answer neither as a first use.
 */
export class TestReplayObject extends DPoPReplayObject {
  readonly #state: DurableObjectStateLike;
  #mode: Mode = 'ok';
  #resume: Array<() => void> = [];
  constructor(state: DurableObjectStateLike, env: unknown) {
    const storage = state.storage as unknown as Record<string, (...args: unknown[]) => unknown>;
    const gated = new Proxy(storage, {
      get: (target, name) => {
        const value = Reflect.get(target, name) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          while (this.#mode === 'slow') await new Promise<void>((r) => this.#resume.push(r));
          if (this.#mode === 'down') throw new Error('storage unavailable');
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    super({ storage: gated as unknown as DurableObjectStateLike['storage'] }, env);
    this.#state = state;
  }
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/debug/count') {
      const all = await this.#state.storage.list({ prefix: '', limit: 100_000 });
      const entries = await this.#state.storage.list({ prefix: 'e:', limit: 100_000 });
      return Response.json({
        keys: all.size,
        entries: entries.size,
        alarm: await this.#state.storage.getAlarm(),
      });
    }
    if (url.pathname === '/debug/mode') {
      this.#mode = url.searchParams.get('m') as Mode;
      if (this.#mode !== 'slow') for (const r of this.#resume.splice(0)) r();
      return Response.json({ mode: this.#mode });
    }
    return super.fetch(request);
  }
}

/**
 * An object answering every use with one kind of garbage (named by the `x-garbage` header its
 * store's stub adds): what a wrong deployment of the object, or a broken runtime, could answer.
 */
export class GarbageObject {
  async fetch(request: Request): Promise<Response> {
    const kind = request.headers.get('x-garbage');
    await request.text();
    switch (kind) {
      case 'string':
        return new Response('{"first":"yes"}');
      case 'number':
        return new Response('{"first":1}');
      case 'padded':
        return new Response('{"first":true} ');
      case 'extra':
        return new Response('{"first":true,"and":1}');
      case 'empty':
        return new Response('');
      case 'bare':
        return new Response('true');
      case 'html':
        return new Response('<html>{"first":true}</html>', {
          headers: { 'content-type': 'text/html' },
        });
      case '201':
        return new Response('{"first":true}', { status: 201 });
      case '500':
        return new Response('{"first":true}', { status: 500 });
      case '404':
        return new Response('{"first":false}', { status: 404 });
      case 'throw':
        throw new Error('the object broke');
      default:
        return new Response('{"first":true}'); // (an unknown kind: the test must fail)
    }
  }
}

/** The garbage kinds of {@link GarbageObject}. */
const GARBAGE = [
  'string',
  'number',
  'padded',
  'extra',
  'empty',
  'bare',
  'html',
  '201',
  '500',
  '404',
  'throw',
];

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
  const shard = (n: number) =>
    env.REPLAY.get(env.REPLAY.idFromName(`popkit-replay-${n}`)) as unknown as {
      fetch(url: string): Promise<Response>;
    };
  api.get('/count', async (c) => {
    let keys = 0;
    let entries = 0;
    for (let n = 0; n < DEFAULT_SHARDS; n++) {
      const counted = (await (await shard(n).fetch('https://debug/debug/count')).json()) as {
        keys: number;
        entries: number;
      };
      keys += counted.keys;
      entries += counted.entries;
    }
    return c.json({ keys, entries });
  });
  // every shard's storage: ok, slow (holds every call) or down (every call throws)
  api.post('/debug/mode', async (c) => {
    const m = c.req.query('m')!;
    await Promise.all(
      Array.from({ length: DEFAULT_SHARDS }, (_, n) =>
        shard(n).fetch(`https://debug/debug/mode?m=${m}`),
      ),
    );
    return c.json({ mode: m });
  });
  // the real store over objects answering garbage, one kind per route
  for (const kind of GARBAGE) {
    const namespace: DurableObjectNamespaceLike = {
      idFromName: (name) => env.GARBAGE.idFromName(name),
      get: (id) => {
        const stub = env.GARBAGE.get(id);
        return {
          fetch: (input, init) =>
            stub.fetch(input, { ...init, headers: { ...init.headers, 'x-garbage': kind } }),
        };
      },
    };
    api.post(`/garbage/${kind}`, use(new DurableObjectReplayStore({ namespace, timeout: 1000 })));
  }
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
