// Configuration of the Durable Object and Deno KV replay stores (their behaviour runs under the
// real workerd and deno binaries: tests/runtimes/test/durable-object.test.ts, deno-kv.test.ts).
import { describe, expect, it } from 'vitest';
import { DPoPConfigError } from '../src/index.ts';
import { DenoKvReplayStore } from '../src/deno-kv/index.ts';
import { DEFAULT_SHARDS, DurableObjectReplayStore } from '../src/durable-object/index.ts';
import { shardOf, shardName } from '../src/replay/durable-object.ts';

const namespace = {
  idFromName: (name: string) => name,
  get: () => ({ fetch: async () => ({ status: 200, text: async () => '' }) }),
};
const kv = {
  get: async () => ({ value: null, versionstamp: null }),
  atomic: () => {
    throw new Error('unused');
  },
};

describe('DurableObjectReplayStore options', () => {
  it('checks the namespace, shards and timeout, and unknown names', () => {
    expect(() => new DurableObjectReplayStore({ namespace })).not.toThrow();
    expect(() => new DurableObjectReplayStore({ namespace: {} as never })).toThrow(DPoPConfigError);
    for (const shards of [0, 1.5, 1025, NaN])
      expect(() => new DurableObjectReplayStore({ namespace, shards })).toThrow(/shards/);
    expect(() => new DurableObjectReplayStore({ namespace, timeout: 0 })).toThrow(/timeout/);
    expect(
      () =>
        new DurableObjectReplayStore({ namespace, shard: 4 } as unknown as {
          namespace: typeof namespace;
        }),
    ).toThrow(/did you mean "shards"/);
  });

  it('spreads keys over a fixed, documented set of objects', () => {
    expect(DEFAULT_SHARDS).toBe(16);
    expect(shardName(3)).toBe('popkit-replay-3');
    const counts = new Array<number>(DEFAULT_SHARDS).fill(0);
    for (let i = 0; i < 16_000; i++) counts[shardOf(`key-${i}`, DEFAULT_SHARDS)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(800); // about 1000 each
    expect(shardOf('abc', 16)).toBe(shardOf('abc', 16)); // stable: the same in every isolate
  });
});

describe('DenoKvReplayStore options', () => {
  it('checks kv, prefix and timeout, and unknown names', () => {
    expect(() => new DenoKvReplayStore({ kv })).not.toThrow();
    expect(() => new DenoKvReplayStore({ kv: {} as never })).toThrow(/Deno.openKv/);
    expect(() => new DenoKvReplayStore({ kv, prefix: 'x' as never })).toThrow(/prefix/);
    expect(() => new DenoKvReplayStore({ kv, timeout: -1 })).toThrow(/timeout/);
    expect(() => new DenoKvReplayStore({ kv, prefx: [] } as unknown as { kv: typeof kv })).toThrow(
      /did you mean "prefix"/,
    );
  });
});
