/**
 * `@popkit/dpop-verifier/redis`: a replay store shared by every server instance.
 * @packageDocumentation
 */
import type { ReplayStore } from '../replay/types.ts';
import { ReplayStoreError } from '../replay/types.ts';
import { DPoPConfigError } from '../errors.ts';

/** An ioredis client or cluster (structural). */
export interface IoredisLike {
  set(key: string, value: string, px: 'PX', ttl: number, nx: 'NX'): Promise<'OK' | null>;
}

/** A node-redis v4/v5 client or cluster (structural). */
export interface NodeRedisLike {
  isOpen: boolean;
  set(key: string, value: string, options: { PX: number; NX: true }): Promise<string | null>;
}

/** Options of {@link RedisReplayStore}. */
export interface RedisReplayStoreOptions {
  /** Key prefix. Default `popkit:dpop:jti:`. */
  prefix?: string;
  /** Milliseconds to wait for Redis before failing closed (503). Default 250. */
  timeout?: number;
}

/**
 * A replay store in Redis, shared by every instance: one `SET key 1 PX ttl NX` per proof, which
 * is atomic, so two instances receiving the same proof at once accept it exactly once. Works with
 * ioredis and node-redis clients and their cluster clients. If Redis is down, slow (`timeout`)
 * or answers an error, `useOnce` throws and the request is refused with 503: never accepted.
 *
 * Under load, keep several requests in flight per connection (both clients pipeline
 * concurrent commands on one socket); ioredis' `enableAutoPipelining` is optional.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis';
 * import { RedisReplayStore } from '@popkit/dpop-verifier/redis';
 * const replay = new RedisReplayStore(new Redis(process.env.REDIS_URL!), { timeout: 200 });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class RedisReplayStore implements ReplayStore {
  readonly #set: (key: string, ttl: number) => Promise<unknown>;
  readonly #prefix: string;
  readonly #timeout: number;

  constructor(client: IoredisLike | NodeRedisLike, options: RedisReplayStoreOptions = {}) {
    if (
      client === null ||
      typeof client !== 'object' ||
      typeof (client as { set?: unknown }).set !== 'function'
    ) {
      throw new DPoPConfigError('client', 'must be an ioredis or node-redis client');
    }
    const { prefix = 'popkit:dpop:jti:', timeout = 250 } = options;
    if (typeof prefix !== 'string') throw new DPoPConfigError('prefix', 'must be a string');
    if (!Number.isFinite(timeout) || timeout <= 0)
      throw new DPoPConfigError('timeout', 'must be a positive number of ms');
    this.#prefix = prefix;
    this.#timeout = timeout;
    if ('isOpen' in client) {
      const c = client as NodeRedisLike;
      this.#set = (key, ttl) => c.set(key, '1', { PX: ttl, NX: true });
    } else {
      const c = client as IoredisLike;
      this.#set = (key, ttl) => c.set(key, '1', 'PX', ttl, 'NX');
    }
  }

  async useOnce(key: string, expiresAt: number): Promise<boolean> {
    const ttl = Math.ceil(expiresAt - Date.now());
    if (ttl <= 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ReplayStoreError('replay_store_error', 'Redis did not answer in time')),
        this.#timeout,
      );
    });
    try {
      const result = await Promise.race([this.#set(this.#prefix + key, ttl), timeout]);
      return result === 'OK';
    } catch (cause) {
      if (cause instanceof ReplayStoreError) throw cause;
      throw new ReplayStoreError('replay_store_error', 'Redis refused the replay check', { cause });
    } finally {
      clearTimeout(timer);
    }
  }
}
