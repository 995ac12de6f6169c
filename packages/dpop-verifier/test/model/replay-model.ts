/**
 * The model test of MemoryReplayStore, run in a worker under a watchdog (see watchdog.ts): a
 * randomized differential test (fast-check, seeded) against a plain Map, checking after every
 * step that a live key is never answered `true`, a dead key never `false`, refusals are only
 * the documented ones, and the store's own invariants hold; after every full sweep, `stats()`
 * equals the model exactly.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { MemoryReplayStore, RAW, SETTLE, VERIFY } from '../../src/replay/memory.ts';
import { ReplayStoreError } from '../../src/replay/types.ts';

export type Op =
  | { t: 'use'; key: number; life: number; account: number }
  | { t: 'tick'; ms: number }
  | { t: 'settle' }
  | { t: 'burst'; account: number; n: number; life: number };

const KEYS = 400;
const ACCOUNTS = 6;
/** Replay keys: most of the verifier's shape (base64url SHA-256 digests), some free-form. */
const keyName = (i: number): string =>
  i % 4 === 0 ? `free-form ${i} ✓` : createHash('sha256').update(`key ${i}`).digest('base64url');
const accountName = (a: number): string => (a === 0 ? '' : `sub:user-${a}`);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      t: fc.constant('use' as const),
      key: fc.nat(KEYS - 1),
      life: fc.oneof(fc.integer({ min: -2000, max: 0 }), fc.integer({ min: 1, max: 20_000 })),
      account: fc.nat(ACCOUNTS - 1),
    }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.nat(3000) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.nat(40_000) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('settle' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('burst' as const),
      account: fc.nat(ACCOUNTS - 1),
      n: fc.integer({ min: 1, max: 200 }),
      life: fc.integer({ min: 500, max: 5000 }),
    }),
  },
);

class Violation extends Error {}
function check(ok: boolean, what: () => string): void {
  if (!ok) throw new Violation(what());
}

/**
 * Runs `ops` against a store of `capacity` and the model; throws on the first difference.
 * Returns the number of store calls made.
 */
export function runOps(ops: readonly Op[], capacity: number, beat: (n: number) => void): number {
  let now = 1_700_000_000_000;
  const store = new MemoryReplayStore({ maxEntries: capacity, now: () => now });
  const soft = Math.floor(capacity / 2);
  /** key -> [expiry second, account] */
  const model = new Map<string, [number, string]>();
  let fresh = 0;
  let calls = 0;
  const nowSec = (): number => Math.floor(now / 1000);
  const live = (key: string): boolean => (model.get(key)?.[0] ?? 0) > nowSec();
  const liveCounts = (): [number, number] => {
    let entries = 0;
    const accounts = new Set<string>();
    for (const [exp, account] of model.values()) {
      if (exp > nowSec()) {
        entries++;
        accounts.add(account);
      }
    }
    return [entries, accounts.size];
  };
  const use = (key: string, life: number, account: string): void => {
    const expiresAt = now + life;
    const wasLive = live(key);
    let got: boolean | string;
    try {
      got = store.useOnce(key, expiresAt, account);
    } catch (e) {
      check(e instanceof ReplayStoreError, () => `unexpected error ${String(e)}`);
      got = (e as ReplayStoreError).reason;
    }
    calls++;
    if (wasLive) {
      check(got === false, () => `a live key was answered ${String(got)}`);
      return;
    }
    if (got === false) check(false, () => 'a dead key was answered false (a replay)');
    if (got === true) {
      model.set(key, [Math.max(Math.ceil(expiresAt / 1000), nowSec() + 1), account]);
      return;
    }
    // A refusal: only the documented ones, and only above the soft limit.
    check(
      (got === 'replay_store_full' && store.size >= capacity) ||
        (got === 'replay_over_share' && store.size >= soft),
      () => `refusal ${String(got)} at ${store.size} of ${capacity}`,
    );
  };
  for (const op of ops) {
    switch (op.t) {
      case 'use':
        use(keyName(op.key), op.life, accountName(op.account));
        break;
      case 'burst':
        // many fresh keys expiring in the same second (one client's chosen iat)
        for (let i = 0; i < op.n; i++) use(`burst-${fresh++}`, op.life, accountName(op.account));
        break;
      case 'tick':
        now += op.ms;
        break;
      case 'settle': {
        store[SETTLE]();
        const [entries, accounts] = liveCounts();
        const stats = store.stats();
        check(
          stats.entries === entries && stats.keys === accounts,
          () =>
            `after a full sweep: store ${stats.entries} entries/${stats.keys} accounts, model ${entries}/${accounts}`,
        );
        break;
      }
    }
    store[VERIFY]();
    const [entries, accounts] = liveCounts();
    const stats = store.stats();
    check(stats.entries >= entries, () => `${stats.entries} entries < ${entries} live`);
    check(stats.keys >= accounts, () => `${stats.keys} accounts < ${accounts} live`);
    beat(calls);
  }
  return calls;
}

/** The randomized runs: `runs` sequences from `seed`; returns the store calls made. */
export function modelRuns(
  input: { seed: number; runs: number },
  beat: (n: number) => void,
): { calls: number; runs: number } {
  let calls = 0;
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 20, maxLength: 400 }),
      fc.constantFrom(8, 16, 64, 200, 1000),
      (ops, capacity) => {
        calls += runOps(ops, capacity, (n) => beat(calls + n));
      },
    ),
    { seed: input.seed, numRuns: input.runs },
  );
  return { calls, runs: input.runs };
}

/**
 * The scenario as a fixed case: above the soft limit, an account whose only entry has
 * expired sends a new proof; the sweep that runs first frees its record, which must not be
 * counted on afterwards (before the fix, `stats().keys` drifted and the record was freed twice).
 */
export function staleRecordScenario(_: unknown, beat: (n: number) => void): number {
  const ops: Op[] = [];
  // 100 accounts-worth of entries in a store of 200: fill past the soft limit with account 1
  ops.push({ t: 'burst', account: 1, n: 100, life: 60_000 });
  for (let round = 0; round < 300; round++) {
    ops.push({ t: 'use', key: round % KEYS, life: 1000, account: 2 + (round % 4) });
    ops.push({ t: 'tick', ms: 1000 + (round % 3) * 500 });
    ops.push({ t: 'use', key: (round + 7) % KEYS, life: 1500, account: 2 + (round % 4) });
    if (round % 50 === 49) ops.push({ t: 'settle' });
  }
  return runOps(ops, 200, beat);
}

/**
 * Corrupts a store's tables on purpose, each in one way a bug could, and checks that the next
 * calls fail closed (`replay_store_error`) instead of spinning, and that the store starts
 * afresh afterwards (new epoch, `since` moved on) and answers again.
 */
export function corruptions(_: unknown, beat: (n: number) => void): string[] {
  const outcomes: string[] = [];
  type Raw = { table: Uint32Array; records: Uint32Array; heads: Uint32Array };
  const cases: Array<[string, (raw: Raw) => void]> = [
    [
      'every slot taken (a probe would never find an empty one)',
      ({ table }) => {
        for (let i = 0; i < table.length; i += 4) {
          table[i] = i * 2654435761;
          table[i + 1] = i;
          table[i + 2] = 0xfffffff0;
          table[i + 3] = 0;
        }
      },
    ],
    [
      'a bucket chain that loops on itself',
      ({ records, heads }) => {
        heads.fill(1); // every bucket starts at record 0, which links to itself
        records[0] ^= 0x5555;
        records[3] = 1;
      },
    ],
    [
      'a record count of zero under live entries (a double free)',
      ({ records }) => {
        for (let r = 0; r < 8; r++) records[r * 4 + 2] = 0;
      },
    ],
  ];
  for (const [name, corrupt] of cases) {
    let now = 1_700_000_000_000;
    const store = new MemoryReplayStore({ maxEntries: 64, now: () => now });
    for (let i = 0; i < 20; i++)
      store.useOnce(keyName(i + 1), now + 5000, accountName(1 + (i % 5)));
    const epoch = store.epoch;
    corrupt(store[RAW]());
    let reason: string | undefined;
    for (let i = 0; i < 200 && reason === undefined; i++) {
      now += 3000; // expiries make the sweep walk the corrupted chains too
      try {
        store.useOnce(keyName(100 + i), now + 5000, accountName(1 + (i % 5)));
      } catch (e) {
        reason = (e as ReplayStoreError).reason;
      }
      beat(i);
    }
    check(reason === 'replay_store_error', () => `${name}: got ${String(reason)}`);
    check(store.epoch !== epoch && store.since === now, () => `${name}: not started afresh`);
    check(store.useOnce('after', now + 5000, 'x') === true, () => `${name}: no answer after`);
    store[VERIFY]();
    outcomes.push(name);
  }
  return outcomes;
}

/** A deliberate spin: the watchdog must turn it into a failure. */
export function spin(): never {
  for (;;) {
    /* a hang */
  }
}
