// The contract every ReplayStore keeps (RFC 9449 §11.1), one suite run against each store:
// memory, Redis (standalone and cluster), Postgres (pg and postgres.js) here
// (replay-contract-*.test.ts), and the Durable Object store under workerd and the Deno KV
// store under deno, driven from Node through tests/runtimes/test/remote-store.ts
// (tests/runtimes/test/durable-object.test.ts, deno-kv.test.ts).
import { createHash } from 'node:crypto';
import { createProof } from '@popkit/dpop-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DPoPError, ReplayStore } from '../src/index.ts';
import { ReplayStoreError, createDPoPAuth } from '../src/index.ts';
import { AUDIENCE, ISSUER, URL_, clientKey, testIssuer } from './helpers.ts';

/** A store (two instances sharing one backend) and the levers the contract pulls. */
export interface StoresUnderTest {
  /** Two instances over one backend, each with its own connection (or one in-process store twice). */
  a: ReplayStore;
  b: ReplayStore;
  /** Rows or keys the backend holds now, live or expired but not yet removed. */
  size(): Promise<number>;
  /** How long an entry may outlive its `expiresAt`, in ms (the memory store counts seconds). */
  lateMs: number;
  /**
   * How long after its `expiresAt` the backend may still hold an expired entry before removing
   * it, in ms (it is refused as live for `lateMs` only). Default `lateMs`. Deno KV: the store's
   * `expireIn` margin (60 s) plus KV's own collection sweep (every 60 s, locally).
   */
  collectMs?: number;
  /**
   * The lifetime of the bounded-storage test's 2,000 entries, in ms: long enough for the fill to
   * end before the first of them expires. Default 2,000 (a store driven over HTTP is slower).
   */
  fillMs?: number;
  /** How long after the store's timeout a slow backend's refusals may arrive. Default 1,500 ms. */
  slowMs?: number;
  /** Failures of the backend, for stores that have one. */
  faults?: {
    /** The backend stops answering (SIGSTOP); resolves to the way back. */
    pause(): Promise<() => Promise<void>>;
    /** The backend goes away (killed); resolves to the way back (restarted). */
    down(): Promise<() => Promise<void>>;
    /** Stores over a client that answers the check with garbage, one kind of garbage each. */
    garbage(): ReplayStore[];
  };
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = (t: number) => sleep(Math.max(0, t - Date.now()));

/** Runs `tasks` with at most `limit` in flight; their settled results, in order. */
async function inFlight<T>(tasks: Array<() => Promise<T>>, limit: number) {
  const results: Array<PromiseSettledResult<T>> = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!().then(
          (value) => ({ status: 'fulfilled', value }) as const,
          (reason: unknown) => ({ status: 'rejected', reason }) as const,
        );
      }
    }),
  );
  return results;
}

/** Expects a refusal that fails closed: a ReplayStoreError with `replay_store_error`. */
async function failsClosed(answer: Promise<boolean> | boolean) {
  const outcome = await Promise.resolve(answer).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  expect(outcome).not.toHaveProperty('value');
  const { error } = outcome as { error: unknown };
  expect(error).toBeInstanceOf(ReplayStoreError);
  expect((error as ReplayStoreError).reason).toBe('replay_store_error');
  expect((error as ReplayStoreError).code).toBe('server_error');
}

/**
 * Registers the contract's tests for one store. `withFaults`: the store has a backend that can
 * fail (`make` must then return `faults`), and the fail-closed tests are registered too.
 */
export function replayStoreContract(
  name: string,
  make: () => Promise<StoresUnderTest>,
  {
    withFaults = false,
    timeout,
    hookTimeout,
  }: {
    withFaults?: boolean;
    /** Per-test timeout (ms), for backends that collect expired entries slowly. */
    timeout?: number;
    /** Timeout of `make` and `close` (ms). */
    hookTimeout?: number;
  } = {},
): void {
  describe(`ReplayStore contract: ${name}`, { timeout }, () => {
    let s: StoresUnderTest;
    let run = 0;
    /** Keys unique to this run and test, of the verifier's shape (43 base64url characters). */
    const keys = (n: number) => {
      const tag = `${name}:${Date.now()}:${run++}:${Math.random()}`;
      return Array.from({ length: n }, (_, i) =>
        createHash('sha256').update(`${tag}:${i}`).digest('base64url'),
      );
    };
    beforeAll(async () => {
      s = await make();
    }, hookTimeout);
    afterAll(async () => {
      await s?.close();
    }, hookTimeout);

    it('first use exactly once: two instances race 64 in flight over the same keys', async () => {
      const ks = keys(128);
      const expiresAt = Date.now() + 30_000;
      // every key four times, alternating instances, shuffled, 64 in flight
      const calls = ks.flatMap((k) => [0, 1, 2, 3].map((i) => ({ k, store: i % 2 ? s.a : s.b })));
      for (let i = calls.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [calls[i], calls[j]] = [calls[j]!, calls[i]!];
      }
      const results = await inFlight(
        calls.map(
          ({ k, store }) =>
            () =>
              Promise.resolve(store.useOnce(k, expiresAt)),
        ),
        64,
      );
      const firsts = new Map<string, number>();
      results.forEach((r, i) => {
        expect(r.status).toBe('fulfilled');
        if (r.status === 'fulfilled' && r.value === true)
          firsts.set(calls[i]!.k, (firsts.get(calls[i]!.k) ?? 0) + 1);
      });
      expect(firsts.size).toBe(ks.length);
      expect([...firsts.values()].every((n) => n === 1)).toBe(true);
      // and every later use, on either instance, is a replay
      for (const k of ks.slice(0, 16)) {
        expect(await s.a.useOnce(k, expiresAt)).toBe(false);
        expect(await s.b.useOnce(k, expiresAt)).toBe(false);
      }
    });

    it('exact lifetime: refused until expiresAt, accepted again after it', async () => {
      const [k, other] = keys(2);
      const expiresAt = Date.now() + 1200;
      expect(await s.a.useOnce(k!, expiresAt)).toBe(true);
      expect(await s.a.useOnce(other!, Date.now() + 30_000)).toBe(true);
      await sleep(500);
      expect(await s.b.useOnce(k!, expiresAt)).toBe(false);
      await until(expiresAt - 150);
      expect(await s.a.useOnce(k!, expiresAt)).toBe(false);
      expect(await s.b.useOnce(k!, expiresAt)).toBe(false);
      await until(expiresAt + s.lateMs + 100);
      // expired: a new use is first use (once), and it lives for its new expiry
      const again = Date.now() + 30_000;
      const [x, y] = await Promise.all([s.b.useOnce(k!, again), s.a.useOnce(k!, again)]);
      expect([x, y].filter(Boolean)).toHaveLength(1);
      expect(await s.a.useOnce(k!, again)).toBe(false);
      // an entry with a longer life is untouched
      expect(await s.b.useOnce(other!, Date.now() + 30_000)).toBe(false);
    });

    it('storage stays bounded: expired entries are removed', async () => {
      const before = await s.size();
      const short = keys(2000);
      // long enough for the fill to end before the first of them expires, on a busy machine
      const expiresAt = Date.now() + (s.fillMs ?? 2000);
      const filled = await inFlight(
        short.map((k, i) => () => Promise.resolve((i % 2 ? s.a : s.b).useOnce(k, expiresAt))),
        64,
      );
      const failed = filled.filter((r) => !(r.status === 'fulfilled' && r.value === true));
      expect(failed.slice(0, 3), `${failed.length} of 2000 uses not accepted`).toEqual([]);
      expect(await s.size()).toBeGreaterThanOrEqual(before + 2000);
      await until(expiresAt + (s.collectMs ?? s.lateMs) + 100);
      // traffic goes on (with entries of its own); the expired ones must go
      let made = 0;
      let size = Infinity;
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const batch = keys(100);
        await inFlight(
          batch.map(
            (k, i) => () => Promise.resolve((i % 2 ? s.a : s.b).useOnce(k, Date.now() + 30_000)),
          ),
          32,
        );
        made += batch.length;
        size = await s.size();
        if (size <= before + made + 100) break;
        await sleep(50);
      }
      expect(size).toBeLessThanOrEqual(before + made + 100);
    });

    it('a captured proof raced at two createDPoPAuth instances sharing the store is accepted once', async () => {
      const as = await testIssuer();
      const auth = (replay: ReplayStore) =>
        createDPoPAuth({
          accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: as.jwks as never },
          replay,
          allowedHosts: ['api.example.com'],
        });
      const [one, two] = [auth(s.a), auth(s.b)];
      const k = await clientKey();
      const token = await as.mint({ cnf: { jkt: k.jkt } });
      for (let round = 0; round < 10; round++) {
        const proof = await createProof(k.keyPair, {
          method: 'GET',
          url: URL_,
          accessToken: token,
        });
        const request = () => ({
          method: 'GET',
          url: URL_,
          headers: new Headers({ authorization: `DPoP ${token}`, dpop: proof }),
        });
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? one : two).verify(request())),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of results)
          if (r.status === 'rejected') expect((r.reason as DPoPError).reason).toBe('replay');
      }
    });

    if (!withFaults) return;
    const faults = () => {
      if (s.faults === undefined) throw new Error(`${name}: withFaults needs faults`);
      return s.faults;
    };
    describe('when the backend fails', () => {
      it('slow (paused): every check rejects within the timeout, none is accepted; then recovers', async () => {
        const resume = await faults().pause();
        try {
          const started = Date.now();
          const answers = keys(16).map((k, i) =>
            Promise.resolve((i % 2 ? s.a : s.b).useOnce(k, Date.now() + 30_000)),
          );
          // (handled now: they may settle, in any order, while the first is awaited)
          for (const answer of answers) answer.catch(() => undefined);
          for (const answer of answers) await failsClosed(answer);
          expect(Date.now() - started).toBeLessThan(s.slowMs ?? 1500);
        } finally {
          await resume();
        }
        await recovers(s);
      });

      it('down: every check rejects, none is accepted; then recovers', async () => {
        const back = await faults().down();
        try {
          for (const k of keys(8)) {
            await failsClosed(s.a.useOnce(k, Date.now() + 30_000));
            await failsClosed(s.b.useOnce(k, Date.now() + 30_000));
          }
        } finally {
          await back();
        }
        await recovers(s);
      });

      it('garbage answers reject, never true', async () => {
        const stores = faults().garbage();
        expect(stores.length).toBeGreaterThan(0);
        for (const store of stores)
          for (const k of keys(2)) await failsClosed(store.useOnce(k, Date.now() + 30_000));
      });
    });
  });
}

/** Both instances answer again within 10 s (their first answers after an outage may refuse). */
async function recovers(s: StoresUnderTest): Promise<void> {
  for (const store of [s.a, s.b]) {
    let answer: boolean | undefined;
    for (let i = 0; i < 100 && answer === undefined; i++) {
      const k = createHash('sha256').update(`recover:${Math.random()}`).digest('base64url');
      answer = await Promise.resolve(store.useOnce(k, Date.now() + 30_000)).catch(() => undefined);
      if (answer === undefined) await sleep(100);
    }
    expect(answer).toBe(true);
  }
}
