// Replay stores: the memory store at 100k and 1M live entries, and Redis with 1 and 64 in flight.
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import { RedisReplayStore } from '@popkit/dpop-verifier/redis';
import { findBinary } from '@popkit/example-shared/binaries';
import type { RedisServer } from '@popkit/example-shared/redis';
import { startRedis } from '@popkit/example-shared/redis';
import { Redis } from 'ioredis';
import type { Case } from './harness.ts';

const TTL = 70_000;

const rings = new Map<number, string[]>();

/**
 * Pre-generated 43-character keys (the shape of replay keys), enough for `live` entries plus one
 * round of inserts, so the loops measure the store and not string building.
 */
function keyRing(live: number): string[] {
  let ring = rings.get(live);
  if (ring === undefined) {
    ring = Array.from({ length: live + 2_000_000 }, (_, i) =>
      `${i.toString(36)}`.padStart(43, 'k'),
    );
    rings.set(live, ring);
  }
  return ring;
}

const label = (live: number) => (live >= 1e6 ? `${live / 1e6}M` : `${live / 1e3}k`);

/** A memory store held at `live` entries: a logical clock expires one old entry per insert. */
export function memoryCase(live: number): Case {
  const ring = keyRing(live);
  let clock = 0;
  const step = TTL / live;
  let store = new MemoryReplayStore({
    maxEntries: live * 2,
    maxPerKey: live * 2,
    now: () => clock,
  });
  let n = 0;
  return {
    name: `MemoryReplayStore.useOnce at ${label(live)} live entries`,
    beforeRound: () => {
      clock = 0;
      store = new MemoryReplayStore({
        maxEntries: live * 2,
        maxPerKey: live * 2,
        now: () => clock,
      });
      for (n = 0; n < live; n++) {
        store.useOnce(ring[n]!, clock + TTL, 'jkt');
        clock += step;
      }
    },
    run: () => {
      clock += step;
      return store.useOnce(ring[n++ % ring.length]!, clock + TTL, 'jkt');
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

/** Bytes of heap per live entry of the memory store (heapUsed delta after a full GC). */
export function memoryBytesPerEntry(entries: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const store = new MemoryReplayStore({
    maxEntries: entries + 1,
    maxPerKey: entries + 1,
    now: () => 0,
  });
  for (let i = 0; i < entries; i++)
    store.useOnce(`${i}`.padStart(43, 'A'), 60_000, 'a-jkt-shared-by-all-entries-for-this-measure');
  gc?.();
  const after = process.memoryUsage().heapUsed;
  if (store.size !== entries) throw new Error('store size mismatch');
  return (after - before) / entries;
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
