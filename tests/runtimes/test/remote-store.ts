// A ReplayStore in Node that forwards each use to a store running inside a real runtime
// (workerd, deno) over HTTP (`POST <url> { key, expiresAt }`): the remote driver through which
// the shared contract suite (packages/dpop-verifier/test/replay-contract.ts) drives the Durable
// Object and Deno KV stores from durable-object.test.ts and deno-kv.test.ts.
//
// It adds no verdict of its own: `{"first": true|false}` with 200 is the store's answer; a 503
// `{"error":"ReplayStoreError","reason":…}` is the store's own typed refusal, rethrown as one.
// Anything else (the runtime's route crashed, an unexpected shape) is a plain Error, which the
// contract's fail-closed checks do NOT count as a refusal, so a broken harness cannot pass them.
import type { ReplayStore, ReplayStoreFailure } from '@popkit/dpop-verifier';
import { ReplayStoreError } from '@popkit/dpop-verifier';

export function remoteStore(url: () => string): ReplayStore {
  return {
    async useOnce(key: string, expiresAt: number): Promise<boolean> {
      const r = await fetch(url(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, expiresAt }),
      });
      const text = await r.text();
      let body: { first?: unknown; error?: unknown; reason?: unknown; message?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new Error(`the runtime answered HTTP ${r.status}, not JSON: ${text.slice(0, 200)}`);
      }
      if (r.status === 200 && typeof body.first === 'boolean') return body.first;
      if (r.status === 503 && body.error === 'ReplayStoreError' && typeof body.reason === 'string')
        throw new ReplayStoreError(
          body.reason as ReplayStoreFailure,
          `in the runtime: ${String(body.message)}`,
        );
      throw new Error(`the runtime answered HTTP ${r.status}: ${text.slice(0, 200)}`);
    },
  };
}
