export { REDIS_INSTALL, freePort, startRedis } from '../examples/shared/src/redis.ts';
export type { RedisServer } from '../examples/shared/src/redis.ts';
