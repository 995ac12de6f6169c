export {
  REDIS_INSTALL,
  freePort,
  startRedis,
  startRedisCluster,
} from '../examples/shared/src/redis.ts';
export type { RedisCluster, RedisServer } from '../examples/shared/src/redis.ts';
