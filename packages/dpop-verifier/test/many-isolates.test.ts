// The warning of an in-process replay store on a runtime that runs many isolates (issue 24,
// item 5). The detection is tested here on the globals each platform sets; tests/runtimes
// checks it under the real workerd binary.
import { describe, expect, it } from 'vitest';
import { DPoPConfigError, MemoryReplayStore } from '../src/index.ts';
import type { RuntimeGlobals } from '../src/replay/many-isolates.ts';
import { manyIsolatesRuntime } from '../src/replay/many-isolates.ts';

const deno = (id: string | undefined, state = 'granted'): RuntimeGlobals['Deno'] => ({
  env: { get: (name) => (name === 'DENO_DEPLOYMENT_ID' ? id : undefined) },
  permissions: { querySync: () => ({ state }) },
});

describe('manyIsolatesRuntime', () => {
  it('names Cloudflare Workers and the Durable Object store', () => {
    expect(manyIsolatesRuntime({ navigator: { userAgent: 'Cloudflare-Workers' } })).toEqual({
      runtime: 'Cloudflare Workers',
      store: expect.stringContaining('DurableObjectReplayStore'),
    });
  });

  it('names Deno Deploy (DENO_DEPLOYMENT_ID) and the Deno KV store, asking only when allowed', () => {
    expect(manyIsolatesRuntime({ Deno: deno('abc123') })?.store).toMatch(/DenoKvReplayStore/);
    expect(manyIsolatesRuntime({ Deno: deno(undefined) })).toBeUndefined(); // plain Deno
    expect(manyIsolatesRuntime({ Deno: deno('') })).toBeUndefined();
    // not granted ('prompt' would ask the user): never read
    let read = false;
    const prompting: RuntimeGlobals['Deno'] = {
      env: { get: () => ((read = true), 'abc') },
      permissions: { querySync: () => ({ state: 'prompt' }) },
    };
    expect(manyIsolatesRuntime({ Deno: prompting })).toBeUndefined();
    expect(read).toBe(false);
    // a permission error is no detection, never an exception
    const throwing: RuntimeGlobals['Deno'] = {
      env: {
        get: () => {
          throw new Error('NotCapable');
        },
      },
    };
    expect(manyIsolatesRuntime({ Deno: throwing })).toBeUndefined();
  });

  it('names Vercel and Netlify edge functions', () => {
    expect(manyIsolatesRuntime({ EdgeRuntime: 'edge-runtime' })?.runtime).toMatch(/Vercel/);
    expect(manyIsolatesRuntime({ Netlify: {} })?.runtime).toBe('Netlify');
  });

  it('finds nothing on Node, Bun, browsers (or this process)', () => {
    expect(manyIsolatesRuntime({ navigator: { userAgent: 'Node.js/20' } })).toBeUndefined();
    expect(manyIsolatesRuntime({ navigator: { userAgent: 'Mozilla/5.0' } })).toBeUndefined();
    expect(manyIsolatesRuntime({})).toBeUndefined();
    expect(manyIsolatesRuntime()).toBeUndefined();
  });

  it('a throwing global is no detection', () => {
    const globals = {
      get navigator(): never {
        throw new Error('boom');
      },
    } as RuntimeGlobals;
    expect(manyIsolatesRuntime(globals)).toBeUndefined();
  });
});

describe('MemoryReplayStore singleInstance', () => {
  it('is a known boolean option', () => {
    expect(() => new MemoryReplayStore({ maxEntries: 8, singleInstance: true })).not.toThrow();
    expect(
      () => new MemoryReplayStore({ maxEntries: 8, singleInstance: 'yes' as unknown as boolean }),
    ).toThrow(DPoPConfigError);
    expect(
      () => new MemoryReplayStore({ singleInstanse: true } as unknown as { singleInstance: true }),
    ).toThrow(/did you mean "singleInstance"/);
  });
});
