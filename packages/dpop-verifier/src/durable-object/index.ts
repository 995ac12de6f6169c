/**
 * `@popkit/dpop-verifier/durable-object`: a replay store shared by every isolate of a
 * Cloudflare Worker, in Durable Objects. Export {@link DPoPReplayObject} from the Worker and
 * bind its namespace.
 * @packageDocumentation
 */
export {
  DEFAULT_SHARDS,
  DPoPReplayObject,
  DurableObjectReplayStore,
} from '../replay/durable-object.ts';
export type {
  DurableObjectNamespaceLike,
  DurableObjectReplayStoreOptions,
  DurableObjectResponseLike,
  DurableObjectStateLike,
  DurableObjectStorageLike,
  DurableObjectStubLike,
} from '../replay/durable-object.ts';
