// Replay stores: the memory store at 100k and 1M live entries, Redis with 1 and 64 in flight, and
// Postgres with 64 in flight against the raw INSERT ... ON CONFLICT it sends.
import { createHash } from 'node:crypto';
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import { PostgresReplayStore, postgresReplaySchema } from '@popkit/dpop-verifier/postgres';
import { RedisReplayStore } from '@popkit/dpop-verifier/redis';
import { findBinary } from '@popkit/example-shared/binaries';
import type { PostgresServer } from '@popkit/example-shared/postgres';
import { findPostgresBinary, startPostgres } from '@popkit/example-shared/postgres';
import type { RedisServer } from '@popkit/example-shared/redis';
import { startRedis } from '@popkit/example-shared/redis';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Case } from './harness.ts';

const TTL = 70_000;

const rings = new Map<number, string[]>();

/**
 * Pre-generated replay keys of the verifier's shape (base64url SHA-256, 43 characters), enough
 * for `live` entries plus one round of inserts, so the loops measure the store and not hashing.
 */
function keyRing(live: number): string[] {
  let ring = rings.get(live);
  if (ring === undefined) {
    ring = Array.from({ length: live + 2_000_000 }, (_, i) =>
      createHash('sha256').update(`k${i}`).digest('base64url'),
    );
    rings.set(live, ring);
  }
  return ring;
}

const label = (live: number) => (live >= 1e6 ? `${live / 1e6}M` : `${live / 1e3}k`);
/** 64 client keys share the traffic; the store has room for 2.5x the live entries. */
const SCOPES = Array.from({ length: 64 }, (_, i) =>
  createHash('sha256').update(`jkt${i}`).digest('base64url'),
);

/** A memory store held at `live` entries: a logical clock expires one old entry per insert. */
export function memoryCase(live: number): Case {
  const ring = keyRing(live);
  let clock = 0;
  const step = TTL / live;
  const fresh = () =>
    new MemoryReplayStore({ maxEntries: Math.ceil(live * 2.5), now: () => clock });
  let store = fresh();
  let n = 0;
  return {
    name: `MemoryReplayStore.useOnce at ${label(live)} live entries`,
    beforeRound: () => {
      clock = 1e12;
      store = fresh();
      for (n = 0; n < live; n++) {
        store.useOnce(ring[n]!, clock + TTL, SCOPES[n & 63]);
        clock += step;
      }
    },
    run: () => {
      clock += step;
      const i = n++;
      return store.useOnce(ring[i % ring.length]!, clock + TTL, SCOPES[i & 63]);
    },
  };
}

/** The floor: the same keys into a plain Map held at `live` entries (insert one, delete the oldest). */
export function mapBaselineCase(live: number): Case {
  const ring = keyRing(live);
  let map = new Map<string, number>();
  let n = 0;
  let oldest = 0;
  return {
    name: `[limit] Map has + set + delete oldest at ${label(live)} live entries`,
    beforeRound: () => {
      map = new Map();
      for (n = 0; n < live; n++) map.set(ring[n]!, n);
      oldest = 0;
    },
    run: () => {
      const k = ring[n++ % ring.length]!;
      if (map.has(k)) return false;
      map.set(k, n);
      map.delete(ring[oldest++ % ring.length]!);
      return true;
    },
  };
}

/**
 * Bytes per live entry of the memory store filled to `entries` by 1,000 client keys: its
 * typed arrays (exact: `stats().bytes`) plus whatever the JS heap grew by while filling it,
 * after full GCs (run with --expose-gc). The store is sized so that `entries` is its soft limit
 * (half its capacity, where fairness starts): the memory a deployment needs to hold that many
 * proofs in normal operation, headroom included.
 */
export async function memoryBytesPerEntry(
  entries: number,
): Promise<{ perEntry: number; heapGrowthPerEntry: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run the bench with node --expose-gc');
  const keys = Array.from({ length: entries }, (_, i) =>
    createHash('sha256').update(`b${i}`).digest('base64url'),
  );
  const scopes = SCOPES.concat(
    Array.from({ length: 936 }, (_, i) => createHash('sha256').update(`s${i}`).digest('base64url')),
  );
  rings.clear();
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    return process.memoryUsage().heapUsed;
  };
  const store = new MemoryReplayStore({ maxEntries: entries * 2, now: () => 0 });
  const before = await settle();
  for (let i = 0; i < entries; i++) store.useOnce(keys[i]!, 60_000, scopes[i % scopes.length]);
  const growth = Math.max(0, (await settle()) - before);
  if (store.size !== entries) throw new Error('store size mismatch');
  return {
    perEntry: (store.stats().bytes + growth) / entries,
    heapGrowthPerEntry: growth / entries,
  };
}

export interface RedisCases {
  cases: Case[];
  stop(): Promise<void>;
}

/** Redis cases, or undefined when redis-server is not installed. */
export async function redisCases(): Promise<RedisCases | undefined> {
  if (!findBinary('redis-server')) return undefined;
  const server: RedisServer = await startRedis();
  const client = new Redis(server.port, '127.0.0.1');
  const store = new RedisReplayStore(client, { timeout: 1000 });
  let n = 0;
  const key = () => `r${n++}`.padEnd(43, 'x');
  const batch = 64;
  const inFlight: Case = {
    name: 'RedisReplayStore.useOnce, 64 in flight (ops counted per SET)',
    run: () =>
      Promise.all(Array.from({ length: batch }, () => store.useOnce(key(), Date.now() + TTL))),
  };
  return {
    cases: [
      {
        name: 'RedisReplayStore.useOnce, 1 in flight',
        run: () => store.useOnce(key(), Date.now() + TTL),
      },
      inFlight,
    ],
    stop: async () => {
      client.disconnect();
      await server.stop();
    },
  };
}

/**
 * The worst single `useOnce` after a mass expiry: half of the default store's capacity expires
 * in one second (one account's chosen `iat`), then calls continue; the sweep's work must be
 * spread over them (it was one 159 ms call). Returns the slowest call and the 99.9th
 * percentile, in ms, over the calls that cleared the table.
 */
export function massExpiryWorstCall(): { worst: number; p999: number; calls: number } {
  let now = 1e12;
  const store = new MemoryReplayStore({ now: () => now });
  const half = Math.floor(store.capacity / 2) - 1;
  for (let i = 0; i < half; i++) store.useOnce(`mass${i}`, now + 30_000, 'sub:attacker');
  now += 60_000;
  const times: number[] = [];
  for (let i = 0; store.size > 1000 && i < 1_000_000; i++) {
    const t0 = performance.now();
    store.useOnce(`after${i}`, now + 30_000, 'sub:user');
    times.push(performance.now() - t0);
    if (i % 100 === 0) now += 10;
  }
  times.sort((a, b) => b - a);
  return {
    worst: times[0] ?? 0,
    p999: times[Math.floor(times.length / 1000)] ?? 0,
    calls: times.length,
  };
}

export interface PostgresCases {
  /** `[limit]` raw `INSERT ... ON CONFLICT` through pg, then PostgresReplayStore; 64 in flight. */
  cases: Case[];
  /** p99 latency of one call, in ms, per case name, over every call measured so far. */
  p99(): Record<string, number>;
  /** The store's table now: rows per live entry and bytes (heap, indexes, TOAST) per row. */
  perEntry(): Promise<{ rows: number; live: number; bytesPerRow: number }>;
  stop(): Promise<void>;
}

/** Postgres cases against a PostgreSQL of their own, or undefined when it is not installed. */
export async function postgresCases(): Promise<PostgresCases | undefined> {
  if (!findPostgresBinary('initdb') || !findPostgresBinary('postgres')) return undefined;
  const server: PostgresServer = await startPostgres();
  // one pool per side, as a deployment would have; 16 connections carry the 64 in flight
  const storePool = new pg.Pool({ connectionString: server.url, max: 16 });
  const rawPool = new pg.Pool({ connectionString: server.url, max: 16 });
  // an idle connection's error (the server stopping) must not crash the bench
  for (const p of [storePool, rawPool]) p.on('error', () => {});
  const store = new PostgresReplayStore({ client: storePool, statementTimeoutMs: 2000 });
  await rawPool.query(postgresReplaySchema('bench_raw'));
  const raw = {
    name: 'bench_raw_check',
    text: 'INSERT INTO bench_raw AS t (k, exp) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET exp = EXCLUDED.exp WHERE t.exp <= $3 RETURNING 1',
  };
  let n = 0;
  const key = () => createHash('sha256').update(`pg${n++}`).digest('base64url');
  const latencies = new Map<string, number[]>();
  const timed = (name: string, call: () => Promise<unknown>) => {
    const list: number[] = [];
    latencies.set(name, list);
    return async () => {
      const t0 = performance.now();
      await call();
      list.push(performance.now() - t0);
    };
  };
  const batch = 64;
  const inFlight = (name: string, call: () => Promise<unknown>): Case => {
    const one = timed(name, call);
    return { name, run: () => Promise.all(Array.from({ length: batch }, one)) };
  };
  const limit = '[limit] raw INSERT ... ON CONFLICT via pg, 64 in flight (ops counted per INSERT)';
  const popkit = 'PostgresReplayStore.useOnce (pg), 64 in flight (ops counted per check)';
  const cases = [
    inFlight(limit, async () => {
      const now = Date.now();
      const { rows } = await rawPool.query({ ...raw, values: [key(), now + TTL, now] });
      return rows.length === 1;
    }),
    inFlight(popkit, () => store.useOnce(key(), Date.now() + TTL)),
  ];
  await store.ready();
  // warm: the store prepares its statements on every connection
  await Promise.all(Array.from({ length: 64 }, () => store.useOnce(key(), Date.now() + TTL)));
  return {
    cases,
    p99: () =>
      Object.fromEntries(
        [...latencies].map(([name, list]) => {
          const sorted = [...list].sort((a, b) => a - b);
          return [name, sorted[Math.floor(sorted.length * 0.99)] ?? 0];
        }),
      ),
    perEntry: async () => {
      await rawPool.query('VACUUM ANALYZE popkit_dpop_replay');
      const { rows } = await rawPool.query(
        `SELECT count(*)::int AS rows, count(*) FILTER (WHERE exp > $1)::int AS live,
           pg_total_relation_size('popkit_dpop_replay')::float8 AS bytes FROM popkit_dpop_replay`,
        [Date.now()],
      );
      const r = rows[0] as { rows: number; live: number; bytes: number };
      return { rows: r.rows, live: r.live, bytesPerRow: r.bytes / Math.max(1, r.rows) };
    },
    stop: async () => {
      await Promise.all([storePool.end(), rawPool.end()]);
      await server.stop();
    },
  };
}
