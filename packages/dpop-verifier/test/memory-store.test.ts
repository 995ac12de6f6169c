import { describe, expect, it } from 'vitest';
import { MemoryReplayStore, ReplayStoreError } from '../src/index.ts';

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

  it('refuses when full instead of evicting, and frees room as entries expire', () => {
    let now = 0;
    const store = new MemoryReplayStore({ maxEntries: 3, now: () => now });
    for (let i = 0; i < 3; i++) expect(store.useOnce(`k${i}`, 10_000)).toBe(true);
    expect(() => store.useOnce('k3', 10_000)).toThrow(ReplayStoreError);
    expect(store.useOnce('k0', 10_000)).toBe(false); // still detects replays when full
    now = 10_000;
    expect(store.useOnce('k3', 20_000)).toBe(true);
    expect(store.size).toBe(1);
  });

  it('bounds entries per key thumbprint', () => {
    const store = new MemoryReplayStore({ maxPerKey: 2, now: () => 0 });
    expect(store.useOnce('a1', 5000, 'jktA')).toBe(true);
    expect(store.useOnce('a2', 5000, 'jktA')).toBe(true);
    expect(() => store.useOnce('a3', 5000, 'jktA')).toThrow(/too many proofs for this key/);
    expect(store.useOnce('b1', 5000, 'jktB')).toBe(true);
  });

  it('expires in buckets without scanning, also after a long idle gap', () => {
    let now = 0;
    const store = new MemoryReplayStore({ maxEntries: 200_000, now: () => now });
    for (let i = 0; i < 100_000; i++) store.useOnce(`k${i}`, 60_000 + (i % 70) * 1000);
    expect(store.size).toBe(100_000);
    now = 90_000;
    store.useOnce('later', 200_000);
    let live = 0;
    for (let i = 0; i < 100_000; i++) if (60_000 + (i % 70) * 1000 > 90_000) live++;
    expect(store.size).toBe(live + 1);
    now = 10 ** 12; // a very long gap
    store.useOnce('after-gap', now + 1000);
    expect(store.size).toBe(1);
  });

  it('treats already-expired proofs as first use without storing them', () => {
    const store = new MemoryReplayStore({ now: () => 10_000 });
    expect(store.useOnce('old', 9_000)).toBe(true);
    expect(store.size).toBe(0);
  });

  it('validates its options', () => {
    expect(() => new MemoryReplayStore({ maxEntries: 0 })).toThrow(/maxEntries/);
    expect(() => new MemoryReplayStore({ maxPerKey: 1.5 })).toThrow(/maxPerKey/);
  });
});
