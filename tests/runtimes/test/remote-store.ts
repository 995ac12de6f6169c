// A ReplayStore in Node that forwards each use to a store running inside a real runtime
// (workerd, deno) over HTTP (`POST /use { key, expiresAt }`): what the shared contract suite
// can take from `makeStores()` in durable-object.test.ts and deno-kv.test.ts (two instances,
// one shared state).
import type { ReplayStore } from '@popkit/dpop-verifier';
import { ReplayStoreError } from '@popkit/dpop-verifier';

export function remoteStore(url: () => string): ReplayStore {
  return {
    async useOnce(key: string, expiresAt: number): Promise<boolean> {
      const r = await fetch(url(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, expiresAt }),
      });
      const body = (await r.json()) as { first?: unknown; reason?: string };
      if (r.status === 200 && typeof body.first === 'boolean') return body.first;
      // the store in the runtime failed closed (503, its reason), or answered nonsense
      throw new ReplayStoreError(
        'replay_store_error',
        `the store in the runtime answered HTTP ${r.status}: ${JSON.stringify(body)}`,
      );
    },
  };
}
