/**
 * `@popkit/dpop-verifier/deno-kv`: a replay store shared by every isolate of a Deno Deploy
 * app, in Deno KV (`await Deno.openKv()`).
 * @packageDocumentation
 */
export { DenoKvReplayStore } from '../replay/deno-kv.ts';
export type {
  DenoKvAtomicLike,
  DenoKvKeyPart,
  DenoKvLike,
  DenoKvReplayStoreOptions,
} from '../replay/deno-kv.ts';
