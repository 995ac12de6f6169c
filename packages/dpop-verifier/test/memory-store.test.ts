import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryReplayStore, ReplayStoreError } from '../src/index.ts';

/** A replay key of the shape the verifier uses: base64url SHA-256 (43 characters). */
const digest = (s: string): string => createHash('sha256').update(s).digest('base64url');
const jkt = (name: string): string => digest(`key:${name}`);

function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(ReplayStoreError);
    return (e as ReplayStoreError).reason;
  }
}

describe('MemoryReplayStore', () => {
  it('is insert-if-absent until the entry expires', () => {
    let now = 1_000_000;
    const store = new MemoryReplayStore({ now: () => now });
    expect(store.useOnce('k', now + 5000)).toBe(true);
    expect(store.useOnce('k', now + 5000)).toBe(false);
    now += 4999;
    expect(store.useOnce('k', now + 5000)).toBe(false);
    now += 1001;
    expect(store.useOnce('k', now + 5000)).toBe(true);
    expect(store.size).toBe(1);
  });

  it('keeps an entry exactly until its expiry second, never shorter', () => {
    let now = 10_000_000;
    const store = new MemoryReplayStore({ now: () => now });
    const key = digest('exact');
    expect(store.useOnce(key, now + 60_500)).toBe(true);
    now += 60_499;
    expect(store.useOnce(key, now + 60_000)).toBe(false);
    now += 1; // at expiresAt the proof is no longer acceptable anyway (rounded up to the second)
    now += 500;
    expect(store.useOnce(key, now + 60_000)).toBe(true);
  });

  it('matches a Map model under random inserts, replays and expiry (digest and free-form keys)', () => {
    let now = 5_000_000;
    const store = new MemoryReplayStore({ maxEntries: 4096, now: () => now });
    const model = new Map<string, number>();
    const keys = Array.from({ length: 3000 }, (_, i) =>
      i % 3 === 0 ? `free-form-key-${i}` : digest(String(i)),
    );
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let step = 0; step < 60_000; step++) {
      now += rand(40);
      const key = keys[rand(keys.length)]!;
      const expiresAt = now + 1000 + rand(20_000);
      const live = (model.get(key) ?? 0) > now;
      const got = store.useOnce(key, expiresAt, `scope${rand(50)}`);
      expect(got).toBe(!live);
      if (!live) model.set(key, Math.ceil(expiresAt / 1000) * 1000);
    }
    let live = 0;
    for (const exp of model.values()) if (exp > now) live++;
    expect(store.size).toBeGreaterThanOrEqual(live);
    expect(store.size).toBeLessThan(live + 4096 / 4);
    expect(store.stats().keys).toBeLessThanOrEqual(50);
    now += 10 ** 9; // everything expires: every account record must be released
    // (the sweep's work is spread over calls: a few calls clear the whole table)
    for (let i = 0; i < 8; i++) expect(store.useOnce(`last${i}`, now + 1000, 'scope1')).toBe(true);
    expect(store.stats()).toMatchObject({ entries: 8, keys: 1 });
  });

  it('refuses when full instead of evicting, and frees room as entries expire', () => {
    let now = 0;
    const store = new MemoryReplayStore({ maxEntries: 4, now: () => now });
    for (let i = 0; i < 4; i++) expect(store.useOnce(`k${i}`, 10_000, `s${i}`)).toBe(true);
    expect(refusal(() => store.useOnce('k4', 10_000, 's4'))).toBe('replay_store_full');
    expect(store.useOnce('k0', 10_000, 's0')).toBe(false); // still detects replays when full
    now = 10_000;
    expect(store.useOnce('k4', 20_000, 's4')).toBe(true);
    expect(store.size).toBe(1);
    expect(store.stats()).toMatchObject({ entries: 1, capacity: 4, keys: 1, refusedFull: 1 });
  });

  it('serves one busy key with no per-key cap below half the capacity', () => {
    let now = 1_000_000;
    const store = new MemoryReplayStore({ now: () => now }); // default budget
    // 1,000 proofs/s for 120 s, each acceptable for 70 s: about 70,000 live entries.
    for (let i = 0; i < 120_000; i++) {
      now += 1;
      expect(store.useOnce(digest(`busy${i}`), now + 70_000, jkt('busy'))).toBe(true);
    }
    expect(store.size).toBeLessThan(73_000); // 70 s live + at most 2 s awaiting the sweep
    expect(store.stats().refusedOverShare).toBe(0);
  });

  it('above half full, refuses the keys over their fair share and keeps room for everyone else', () => {
    const now = 0;
    const store = new MemoryReplayStore({ maxEntries: 1000, now: () => now });
    // An attacker with 10 keys floods until refused.
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const reason = refusal(() =>
        store.useOnce(digest(`flood${i}`), 60_000, jkt(`attacker${i % 10}`)),
      );
      if (reason === undefined) accepted++;
      else expect(reason).toBe('replay_over_share');
    }
    expect(accepted).toBeLessThanOrEqual(500 + 10);
    // A legitimate key (and many new ones) still get in.
    for (let c = 0; c < 20; c++) {
      for (let i = 0; i < 10; i++)
        expect(store.useOnce(digest(`legit${c}.${i}`), 60_000, jkt(`client${c}`))).toBe(true);
    }
    const stats = store.stats();
    expect(stats.keys).toBe(30);
    expect(stats.fill).toBeLessThan(1);
    // max-min: the 20 clients' 200 entries fit; the 10 flooding keys share the other 300
    expect(store.fairShare()).toBe((500 - 200) / 10);
  });

  it('cannot be filled by keys that arrive one after another (a key below its share is served)', () => {
    const store = new MemoryReplayStore({ maxEntries: 2000, now: () => 0 });
    // Each of 40 attacker keys in turn pushes as far as the store lets it.
    for (let a = 0; a < 40; a++) {
      for (let i = 0; i < 2000; i++) {
        if (refusal(() => store.useOnce(digest(`a${a}.${i}`), 60_000, jkt(`seq${a}`)))) break;
      }
    }
    // A client holding fewer entries than its share is admitted unless the store is full.
    const share = store.fairShare();
    const reason = refusal(() => store.useOnce(digest('victim'), 60_000, jkt('victim')));
    if (reason !== undefined) expect(store.size).toBe(2000);
    else expect(share).toBeGreaterThan(0);
  });

  it('sweeps expired entries so the table never clogs, also after a long idle gap', () => {
    let now = 0;
    const store = new MemoryReplayStore({ maxEntries: 200_000, now: () => now });
    for (let i = 0; i < 100_000; i++) store.useOnce(digest(`k${i}`), 60_000 + (i % 70) * 1000);
    expect(store.size).toBe(100_000);
    now = 10 ** 12; // a very long gap: every entry is expired
    for (let i = 0; i < 90_000; i++) store.useOnce(digest(`n${i}`), now + 1000 * (1 + (i % 5)));
    expect(store.size).toBe(90_000);
    expect(store.stats().refusedFull).toBe(0);
  });

  it('sweeps block by block without missing an entry that moved between blocks', () => {
    let now = 1_000_000_000;
    // 65 slots: a block of 64 and one of 1, so probe chains wrap through the border all the time.
    const store = new MemoryReplayStore({ maxEntries: 52, now: () => now });
    let seed = 11;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const expiry = new Map<string, number>(); // key -> the expiry second the store keeps
    const live = () => [...expiry.values()].filter((s) => s > Math.floor(now / 1000)).length;
    for (let round = 0; round < 3000; round++) {
      // About 75% full, a key each (no fairness refusals), short and long lifetimes: an entry
      // that moves into a block of longer-lived ones must still be found when it expires.
      for (let i = 0; store.size < 48; i++) {
        const key = digest(`r${round}.${i}`);
        const expiresAt = now + (rand(2) === 0 ? 1000 + rand(2000) : 25_000 + rand(4000));
        expect(store.useOnce(key, expiresAt, `k${round}.${i}`)).toBe(true);
        expiry.set(key, Math.ceil(expiresAt / 1000));
        now += rand(100);
      }
      now += 2000 + rand(2000);
      // The next insert's clock share is a whole pass: every expired entry must go, none early.
      expect(store.useOnce(`probe${round}`, now + 1000, 'probe')).toBe(true);
      expiry.set(`probe${round}`, Math.ceil((now + 1000) / 1000));
      expect(store.size).toBe(live());
    }
  });

  it('spreads a mass expiry over calls: no single call clears half the table (was 159 ms)', () => {
    let now = 1_700_000_000_000;
    const store = new MemoryReplayStore({ now: () => now }); // default budget: 761k entries
    // one account's chosen iat makes half the table expire in the same second
    const half = Math.floor(store.capacity / 2) - 1;
    for (let i = 0; i < half; i++) store.useOnce(`mass${i}`, now + 30_000, 'sub:attacker');
    now += 60_000; // every entry expired, and an idle gap: a full pass is owed
    const times: number[] = [];
    let calls = 0;
    while (store.size > 1000 && calls < 100_000) {
      const t0 = performance.now();
      store.useOnce(`after${calls++}`, now + 30_000, 'sub:user');
      times.push(performance.now() - t0);
      if (calls % 100 === 0) now += 10;
    }
    times.sort((a, b) => b - a);
    // at most 1,024 slots (64 blocks of 16) cleared per call: about 1,000 deletions, well under 1 ms
    // on this machine; the bound here leaves room for a loaded CI machine
    // (the 99th percentile, and a generous worst case: a loaded machine delays some calls; a
    // call clearing half the table would be slow however quiet the machine)
    expect(times[Math.floor(times.length / 100)]).toBeLessThan(5);
    expect(times[0]).toBeLessThan(100);
    expect(calls).toBeGreaterThan(half / 1024); // the work was spread
    expect(calls).toBeLessThan(100_000); // and done
  });

  it('records a proof at the very edge of its window for a second: concurrent copies are refused', () => {
    let now = 10_000;
    const store = new MemoryReplayStore({ now: () => now });
    expect(store.useOnce('edge', 10_000)).toBe(true);
    expect(store.useOnce('edge', 10_000)).toBe(false);
    now += 1000;
    expect(store.useOnce('edge', 11_000)).toBe(true);
    // a value a table word cannot hold is clamped, a non-number refused (fail closed)
    expect(store.useOnce('far', Number.MAX_VALUE)).toBe(true);
    expect(store.useOnce('far', Number.MAX_VALUE)).toBe(false);
    expect(refusal(() => store.useOnce('nan', Number.NaN))).toBe('replay_store_error');
  });

  it('accounts flooding one after another never fill the store: a light newcomer is still served', () => {
    let now = 1_000_000;
    const store = new MemoryReplayStore({ maxEntries: 10_000, now: () => now });
    // each of 10 attacker accounts in turn pushes as far as the store lets it, in one lifetime
    // (with the max-min level alone, 4 such accounts filled the store and locked everyone out)
    for (let a = 0; a < 10; a++) {
      for (let i = 0; i < 10_000; i++) {
        if (refusal(() => store.useOnce(`a${a}.${i}`, now + 60_000, `sub:attacker-${a}`))) break;
      }
      now += 100;
    }
    expect(store.size).toBeLessThan(9_500);
    expect(store.stats().refusedFull).toBe(0);
    // a legitimate newcomer needing 50 entries gets them all
    for (let i = 0; i < 50; i++)
      expect(store.useOnce(`victim${i}`, now + 60_000, 'sub:victim')).toBe(true);
  });

  it('stays within its byte budget: 20 bytes of table per entry of capacity, key records grown on demand', () => {
    const store = new MemoryReplayStore({ maxBytes: 64 * 1024 * 1024, now: () => 0 });
    const { capacity } = store.stats();
    // 16 bytes a slot and 4 per block of 16 slots, at most 80% full; 24 for key records and heads
    expect(capacity).toBe(Math.floor((64 * 1024 * 1024) / ((16 + 4 / 16) / 0.8 + 24)));
    expect(store.stats().bytes / capacity).toBeLessThan(21);
    // worst case: every entry from its own key
    const small = new MemoryReplayStore({ maxBytes: 44_000, now: () => 0 });
    let i = 0;
    for (; i < 1000; i++) {
      try {
        small.useOnce(digest(`w${i}`), 60_000, jkt(`own${i}`));
      } catch {
        break;
      }
    }
    expect(small.stats().keys).toBe(small.capacity);
    expect(small.stats().bytes).toBeLessThanOrEqual(44_000);
    expect(new MemoryReplayStore().capacity).toBe(757_222);
  });

  it('does not let a thumbprint collide with another in its share (random keys)', () => {
    const store = new MemoryReplayStore({ maxEntries: 100_000, now: () => 0 });
    for (let i = 0; i < 50_000; i++)
      store.useOnce(randomBytes(32).toString('base64url').slice(0, 43), 1000, jkt(`k${i}`));
    expect(store.stats().keys).toBe(50_000);
  });

  it('validates its options', () => {
    expect(() => new MemoryReplayStore({ maxEntries: 0 })).toThrow(/maxEntries/);
    expect(() => new MemoryReplayStore({ maxBytes: 10 })).toThrow(/maxBytes/);
    expect(() => new MemoryReplayStore({ maxPerKey: 5 } as never)).toThrow(/maxPerKey/);
  });
});
