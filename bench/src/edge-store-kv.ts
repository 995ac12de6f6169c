// The Deno KV store's bench script (edge-store-cases.ts runs it under deno, --unstable-kv):
// DenoKvReplayStore.useOnce against the raw primitive it is built on, the atomic check-and-set
// `kv.atomic().check({ key, versionstamp: null }).set(key, expiresAt, { expireIn }).commit()`,
// 64 in flight, each on a local KV file of its own (KV_DIR). Prints one JSON line: the rounds,
// then the entries and bytes the store's database holds per live entry.
import { DenoKvReplayStore } from '@popkit/dpop-verifier/deno-kv';
import type { DenoKvLike } from '@popkit/dpop-verifier/deno-kv';
import { keyMaker, measureEdge } from './edge-store-loop.ts';

declare const Deno: {
  env: { get(name: string): string | undefined };
  openKv(path: string): Promise<
    DenoKvLike & {
      close(): void;
      list(selector: { prefix: unknown[] }): AsyncIterable<unknown>;
    }
  >;
};

const dir = Deno.env.get('KV_DIR')!;
const rounds = Number(Deno.env.get('ROUNDS'));
const ms = Number(Deno.env.get('MS'));
const rawKv = await Deno.openKv(`${dir}/raw.sqlite`);
const storePath = `${dir}/store.sqlite`;
const storeKv = await Deno.openKv(storePath);
const store = new DenoKvReplayStore({ kv: storeKv, timeout: 5000 });
const TTL = 600_000; // live for the whole bench: every entry is counted after
const rawKey = keyMaker('raw-');
const storeKey = keyMaker('kv-');
const measured = await measureEdge(
  [
    {
      name: 'raw',
      run: async () => {
        const key = ['raw', rawKey()];
        const r = await rawKv
          .atomic()
          .check({ key, versionstamp: null })
          .set(key, Date.now() + TTL, { expireIn: TTL })
          .commit();
        if (!r.ok) throw new Error('raw: not a first use');
      },
    },
    {
      name: 'store',
      run: async () => {
        if (!(await store.useOnce(storeKey(), Date.now() + TTL)))
          throw new Error('store: not a first use');
      },
    },
  ],
  rounds,
  ms,
  64,
);
let entries = 0;
for await (const _ of storeKv.list({ prefix: ['popkit', 'dpop', 'jti'] })) entries++;
storeKv.close();
rawKv.close();
/** (a variable: Node's types, which this file is checked with, have no node:sqlite) */
const SQLITE = 'node:sqlite';
// the store's database file, checkpointed: its pages over the live entries it holds
const { DatabaseSync } = (await import(SQLITE)) as {
  DatabaseSync: new (path: string) => {
    exec(sql: string): void;
    prepare(sql: string): { get(): Record<string, number> };
    close(): void;
  };
};
const db = new DatabaseSync(storePath);
db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
const pages = db.prepare('PRAGMA page_count').get()['page_count']!;
const pageSize = db.prepare('PRAGMA page_size').get()['page_size']!;
const rows = db.prepare('SELECT count(*) AS n FROM kv').get()['n']!;
db.close();
console.log(JSON.stringify({ measured, entries, rows, bytes: pages * pageSize }));
