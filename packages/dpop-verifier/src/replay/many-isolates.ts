/**
 * Runtimes that run a server in many isolates at once (RFC 9449 §11.1: a replay store must be
 * shared by everything that accepts the same proofs). An in-process store there defends one
 * isolate only: the same proof sent twice can reach two isolates and be accepted by both.
 * @module
 */

/** What the detection reads from the global object (structural, for tests). @internal */
export interface RuntimeGlobals {
  navigator?: { userAgent?: unknown };
  Deno?: {
    env?: { get?(name: string): string | undefined };
    permissions?: { querySync?(descriptor: { name: 'env'; variable: string }): { state: string } };
  };
  EdgeRuntime?: unknown;
  Netlify?: unknown;
}

/**
 * The many-isolate runtime this code runs on, and the shared store to use there; undefined on
 * a runtime that runs one process per server (Node, Bun, Deno outside Deploy, browsers).
 * Never throws, never prompts (Deno's env permission is queried first). @internal
 */
export function manyIsolatesRuntime(
  globals: RuntimeGlobals = globalThis as RuntimeGlobals,
): { runtime: string; store: string } | undefined {
  try {
    if (globals.navigator?.userAgent === 'Cloudflare-Workers') {
      return {
        runtime: 'Cloudflare Workers',
        store: 'DurableObjectReplayStore from @popkit/dpop-verifier/durable-object',
      };
    }
    if (globals.Deno !== undefined && deployment(globals.Deno)) {
      return {
        runtime: 'Deno Deploy',
        store: 'DenoKvReplayStore from @popkit/dpop-verifier/deno-kv',
      };
    }
    if (typeof globals.EdgeRuntime === 'string' || globals.Netlify !== undefined) {
      return {
        runtime: typeof globals.EdgeRuntime === 'string' ? 'an edge runtime (Vercel)' : 'Netlify',
        store:
          'a shared ReplayStore (RedisReplayStore from @popkit/dpop-verifier/redis where TCP is available, or one over your platform’s atomic storage)',
      };
    }
  } catch {
    // a global that throws: nothing detected
  }
  return undefined;
}

/** Whether `DENO_DEPLOYMENT_ID` is set, asking only when the env permission is granted. */
function deployment(deno: NonNullable<RuntimeGlobals['Deno']>): boolean {
  try {
    const query = deno.permissions?.querySync?.({ name: 'env', variable: 'DENO_DEPLOYMENT_ID' });
    if (query !== undefined && query.state !== 'granted') return false;
    const id = deno.env?.get?.('DENO_DEPLOYMENT_ID');
    return typeof id === 'string' && id !== '';
  } catch {
    return false; // no permission: not asked
  }
}

let warned = false;

/**
 * Logs, once per process, that an in-process store is not shared by the isolates of this
 * runtime, naming the store to use instead. @internal
 */
export function warnIfManyIsolates(): void {
  if (warned) return;
  const found = manyIsolatesRuntime();
  if (found === undefined) return;
  warned = true;
  console.warn(
    `popkit: MemoryReplayStore remembers proofs in this isolate only, but ${found.runtime} runs many isolates: a proof replayed to another one is accepted again. Use ${found.store}, or pass { singleInstance: true } if this really is the only instance.`,
  );
}
