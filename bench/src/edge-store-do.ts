// The Durable Object store's bench Worker (edge-store-cases.ts runs it under workerd): GET
// /bench measures, in this one workerd, DurableObjectReplayStore.useOnce against the raw
// primitive it is built on, a Durable Object storage get + put round trip (the same stub.fetch
// to an object of the same namespace shape, spread over as many objects), 64 in flight.
// GET /count counts the storage keys and entries the store's objects hold.
import {
  DEFAULT_SHARDS,
  DPoPReplayObject,
  DurableObjectReplayStore,
} from '@popkit/dpop-verifier/durable-object';
import type {
  DurableObjectNamespaceLike,
  DurableObjectStateLike,
} from '@popkit/dpop-verifier/durable-object';
import { keyMaker, measureEdge } from './edge-store-loop.ts';

interface Env {
  REPLAY: DurableObjectNamespaceLike;
  RAW: DurableObjectNamespaceLike;
}

/** The store's object, with a route counting its storage keys. */
export class BenchReplayObject extends DPoPReplayObject {
  readonly #state: DurableObjectStateLike;
  constructor(state: DurableObjectStateLike, env: unknown) {
    super(state, env);
    this.#state = state;
  }
  override async fetch(request: Request): Promise<Response> {
    if (new URL(request.url).pathname === '/count') {
      const all = await this.#state.storage.list({ prefix: '', limit: 1_000_000 });
      const entries = await this.#state.storage.list({ prefix: 'e:', limit: 1_000_000 });
      return Response.json({ keys: all.size, entries: entries.size });
    }
    return super.fetch(request);
  }
}

/** The raw primitive: one storage get, and a put when absent, per request. */
export class RawObject {
  readonly #state: DurableObjectStateLike;
  constructor(state: DurableObjectStateLike) {
    this.#state = state;
  }
  async fetch(request: Request): Promise<Response> {
    const { key, expiresAt } = (await request.json()) as { key: string; expiresAt: number };
    const existing = await this.#state.storage.get(`e:${key}`);
    if (existing !== undefined) return new Response('{"first":false}');
    await this.#state.storage.put({ [`e:${key}`]: expiresAt });
    return new Response('{"first":true}');
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/count') {
      let keys = 0;
      let entries = 0;
      for (let n = 0; n < DEFAULT_SHARDS; n++) {
        const stub = env.REPLAY.get(env.REPLAY.idFromName(`popkit-replay-${n}`)) as unknown as {
          fetch(url: string): Promise<Response>;
        };
        const c = (await (await stub.fetch('https://count/count')).json()) as {
          keys: number;
          entries: number;
        };
        keys += c.keys;
        entries += c.entries;
      }
      return Response.json({ keys, entries });
    }
    const rounds = Number(url.searchParams.get('rounds'));
    const ms = Number(url.searchParams.get('ms'));
    const store = new DurableObjectReplayStore({ namespace: env.REPLAY, timeout: 5000 });
    const rawKey = keyMaker(`raw${Date.now()}-`);
    const storeKey = keyMaker(`do${Date.now()}-`);
    const TTL = 600_000; // live for the whole bench: /count then counts every entry
    let spread = 0;
    const raw = async () => {
      const key = rawKey();
      const stub = env.RAW.get(env.RAW.idFromName(`raw-${spread++ % DEFAULT_SHARDS}`));
      const r = await stub.fetch('https://raw/use', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, expiresAt: Date.now() + TTL }),
        signal: new AbortController().signal,
      });
      if ((await r.text()) !== '{"first":true}') throw new Error('raw: not a first use');
    };
    const popkit = async () => {
      if (!(await store.useOnce(storeKey(), Date.now() + TTL)))
        throw new Error('store: not a first use');
    };
    const measured = await measureEdge(
      [
        { name: 'raw', run: raw },
        { name: 'store', run: popkit },
      ],
      rounds,
      ms,
      64,
    );
    return Response.json(measured);
  },
};
