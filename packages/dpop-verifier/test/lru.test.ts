import { describe, expect, it } from 'vitest';
import { Lru } from '../src/lru.ts';

describe('Lru (internal cache of keys, headers, URLs and validated tokens)', () => {
  it('never holds more than max entries, and evicts the oldest untouched entry', () => {
    const lru = new Lru<string, number>(4);
    for (let i = 0; i < 100; i++) {
      lru.set(`k${i}`, i);
      expect(lru.size).toBeLessThanOrEqual(4);
    }
    expect(lru.get('k95')).toBeUndefined();
    expect([96, 97, 98, 99].map((i) => lru.get(`k${i}`))).toEqual([96, 97, 98, 99]);
  });

  it('keeps an entry that is read, however many insertions follow', () => {
    const lru = new Lru<string, string>(10);
    lru.set('hot', 'value');
    for (let i = 0; i < 1000; i++) {
      lru.set(`cold${i}`, 'x');
      expect(lru.get('hot')).toBe('value');
    }
    // read once every max / 2 insertions is enough
    const lazy = new Lru<string, string>(10);
    lazy.set('hot', 'value');
    for (let i = 0; i < 1000; i++) {
      lazy.set(`cold${i}`, 'x');
      if (i % 5 === 4) expect(lazy.get('hot')).toBe('value');
    }
  });

  it('agrees with a model on get, set and delete (random operations)', () => {
    // model: entries live while fewer than max/2 newer insertions or refreshes happened
    const lru = new Lru<number, number>(8);
    const model = new Map<number, number>();
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let step = 0; step < 5000; step++) {
      const key = rand() % 12;
      const op = rand() % 3;
      if (op === 0) {
        lru.set(key, step);
        model.set(key, step);
      } else if (op === 1) {
        const got = lru.get(key);
        // a hit always carries the last value set; a miss only for keys evicted or deleted
        if (got !== undefined) expect(got).toBe(model.get(key));
      } else {
        lru.delete(key);
        model.delete(key);
        expect(lru.get(key)).toBeUndefined();
      }
      expect(lru.size).toBeLessThanOrEqual(8);
    }
  });
});
