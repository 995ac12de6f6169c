/**
 * `@popkit/dpop-verifier/redis`: a replay store shared by every server instance.
 * @packageDocumentation
 */
export { RedisReplayStore, persists } from '../replay/redis.ts';
export type { IoredisLike, NodeRedisLike, RedisReplayStoreOptions } from '../replay/redis.ts';
