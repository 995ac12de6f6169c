/**
 * A replay store shared by every server instance (RFC 9449 §11.1), in Redis: published as
 * `@popkit/dpop-verifier/redis` (`src/redis/index.ts`). Beside the memory store.
 * @module
 */
import type { ReplayStore } from './types.ts';
import { ReplayStoreError } from './types.ts';
import { DPoPConfigError } from '../errors.ts';
import type { OptionNames } from '../options.ts';
import { rejectUnknownOptions } from '../options.ts';

/** An ioredis client or cluster (structural). */
export interface IoredisLike {
  set(key: string, value: string, px: 'PX', ttl: number, nx: 'NX'): Promise<'OK' | null>;
  /** `CONFIG GET` (ioredis `Redis`). */
  config?(op: 'GET', name: string): Promise<unknown>;
  /** The master nodes (ioredis `Cluster`). */
  nodes?(role: 'master'): ReadonlyArray<{ config(op: 'GET', name: string): Promise<unknown> }>;
  /** `INFO section` (ioredis `Redis`). */
  info?(section: string): Promise<string>;
}

/** A node-redis v4/v5 client or cluster (structural). */
export interface NodeRedisLike {
  isOpen: boolean;
  set(key: string, value: string, options: { PX: number; NX: true }): Promise<string | null>;
  /** `CONFIG GET` (node-redis client). */
  configGet?(name: string): Promise<Record<string, string>>;
  /** The master nodes and their clients (node-redis cluster). */
  masters?: readonly unknown[];
  nodeClient?(node: never): Promise<{ configGet(name: string): Promise<Record<string, string>> }>;
  /** `INFO section` (node-redis client). */
  info?(section: string): Promise<string>;
}

/** Options of {@link RedisReplayStore}. */
export interface RedisReplayStoreOptions {
  /** Key prefix. Default `popkit:dpop:jti:`. */
  prefix?: string;
  /** Milliseconds to wait for Redis before failing closed (503). Default 250. */
  timeout?: number;
  /**
   * The operator guarantees that Redis never evicts keys (`maxmemory-policy noeviction`), for
   * managed Redis where `CONFIG GET` is disabled. Without it the store checks the policy itself
   * and refuses to run (fails closed) unless it can read `noeviction`. Default false.
   */
  assumeNoEviction?: boolean;
  /** How often, in ms, the eviction policy is checked again. Default 60,000. */
  policyCheckInterval?: number;
  /**
   * Where the one-time warning goes when Redis reports no AOF persistence: after such a Redis
   * restarts, proofs accepted before it could be accepted again (a replica does not help: a
   * master restarting empty empties its replicas). Not checked on cluster clients (check every
   * node yourself). Default `console.warn`. The message carries no key, token or proof.
   */
  onWarning?: (message: string) => void;
}

/** The names of {@link RedisReplayStoreOptions}, for the unknown-option check. @internal */
const REDIS_STORE_OPTION_NAMES = {
  prefix: true,
  timeout: true,
  assumeNoEviction: true,
  policyCheckInterval: true,
  onWarning: true,
} as const satisfies OptionNames<RedisReplayStoreOptions>;

/**
 * Whether `INFO persistence` shows that replay entries survive a Redis restart: AOF on. (A
 * replica does not: a master without AOF that restarts comes back empty and empties its
 * replicas; RDB snapshots lose what came after the last one.) @internal
 */
export function persists(info: string): boolean {
  return /^aof_enabled:1\s*$/m.test(info);
}

/** The only `maxmemory-policy` under which a replay entry cannot vanish before it expires. */
const SAFE_POLICY = 'noeviction';

function policyOf(reply: unknown): string | undefined {
  // ioredis: ['maxmemory-policy', 'noeviction']; node-redis: { 'maxmemory-policy': 'noeviction' }
  if (Array.isArray(reply)) return typeof reply[1] === 'string' ? reply[1] : undefined;
  if (reply !== null && typeof reply === 'object') {
    const value = (reply as Record<string, unknown>)['maxmemory-policy'];
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/**
 * A replay store in Redis, shared by every instance: one `SET key 1 PX ttl NX` per proof, which
 * is atomic, so two instances receiving the same proof at once accept it exactly once. Works with
 * ioredis and node-redis clients and their cluster clients. If Redis is down, slow (`timeout`),
 * answers an error (including `OOM` when it is full) or anything but `OK` or nil, `useOnce`
 * throws and the request is refused with 503: never accepted.
 *
 * **Eviction**: a Redis that may evict keys under memory pressure (`volatile-*`, `allkeys-*`)
 * would forget a proof and accept it a second time. So on first use, and again every
 * `policyCheckInterval`, the store reads `maxmemory-policy` (on every master of a cluster) and
 * refuses to operate unless it is `noeviction`. Where `CONFIG` is disabled (managed Redis),
 * set `assumeNoEviction: true` to state that the operator guarantees it.
 *
 * **Sizing**: each live proof is one key of about 90 bytes in Redis (a 60-byte key and its
 * expiry), living exactly as long as the proof could be accepted again (at most
 * `maxAge + clockTolerance`, or the nonce lifetime). Plan `maxmemory` for
 * (peak proofs per second) x (that lifetime) x 90 bytes, with headroom.
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
  readonly #readPolicies: () => Promise<Array<string | undefined>>;
  readonly #prefix: string;
  readonly #timeout: number;
  readonly #assumeNoEviction: boolean;
  readonly #policyCheckInterval: number;
  #policyCheckedAt = -Infinity;
  #policyCheck: Promise<void> | undefined;
  readonly #readInfo: (() => Promise<string>) | undefined;
  readonly #onWarning: (message: string) => void;
  #persistenceChecked = false;

  constructor(client: IoredisLike | NodeRedisLike, options: RedisReplayStoreOptions = {}) {
    if (
      client === null ||
      typeof client !== 'object' ||
      typeof (client as { set?: unknown }).set !== 'function'
    ) {
      throw new DPoPConfigError('client', 'must be an ioredis or node-redis client');
    }
    if (options === null || typeof options !== 'object')
      throw new DPoPConfigError('options', 'must be an object');
    rejectUnknownOptions(options, REDIS_STORE_OPTION_NAMES, 'RedisReplayStore');
    const {
      prefix = 'popkit:dpop:jti:',
      timeout = 250,
      assumeNoEviction = false,
      policyCheckInterval = 60_000,
      onWarning = (message: string) => console.warn(message),
    } = options;
    if (typeof onWarning !== 'function')
      throw new DPoPConfigError('onWarning', 'must be a function');
    this.#onWarning = onWarning;
    const info = (client as { info?: unknown }).info;
    this.#readInfo =
      typeof info === 'function' && !('nodes' in client) && !('masters' in client)
        ? async () => (info as (s: string) => Promise<string>).call(client, 'persistence')
        : undefined;
    if (typeof prefix !== 'string') throw new DPoPConfigError('prefix', 'must be a string');
    if (!Number.isFinite(timeout) || timeout <= 0)
      throw new DPoPConfigError('timeout', 'must be a positive number of ms');
    if (typeof assumeNoEviction !== 'boolean')
      throw new DPoPConfigError('assumeNoEviction', 'must be a boolean');
    if (!Number.isFinite(policyCheckInterval) || policyCheckInterval < 1000)
      throw new DPoPConfigError('policyCheckInterval', 'must be a number of ms >= 1000');
    this.#prefix = prefix;
    this.#timeout = timeout;
    this.#assumeNoEviction = assumeNoEviction;
    this.#policyCheckInterval = policyCheckInterval;
    if ('isOpen' in client) {
      const c = client as NodeRedisLike;
      this.#set = (key, ttl) => c.set(key, '1', { PX: ttl, NX: true });
      this.#readPolicies = async () => {
        if (Array.isArray(c.masters) && typeof c.nodeClient === 'function') {
          const clients = await Promise.all(c.masters.map((m) => c.nodeClient!(m as never)));
          return Promise.all(
            clients.map(async (n) => policyOf(await n.configGet('maxmemory-policy'))),
          );
        }
        if (typeof c.configGet !== 'function') return [undefined];
        return [policyOf(await c.configGet('maxmemory-policy'))];
      };
    } else {
      const c = client as IoredisLike;
      this.#set = (key, ttl) => c.set(key, '1', 'PX', ttl, 'NX');
      this.#readPolicies = async () => {
        if (typeof c.nodes === 'function') {
          return Promise.all(
            c.nodes('master').map(async (n) => policyOf(await n.config('GET', 'maxmemory-policy'))),
          );
        }
        if (typeof c.config !== 'function') return [undefined];
        return [policyOf(await c.config('GET', 'maxmemory-policy'))];
      };
    }
  }

  async useOnce(key: string, expiresAt: number): Promise<boolean> {
    // at least a second: a proof at the very edge of its window is still recorded, so
    // concurrent copies of it are refused
    const ttl = Math.max(Math.ceil(expiresAt - Date.now()), 1000);
    if (!Number.isFinite(ttl))
      throw new ReplayStoreError('replay_store_error', 'expiresAt must be a finite number of ms');
    if (!this.#persistenceChecked) this.#checkPersistence();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ReplayStoreError('replay_store_error', 'Redis did not answer in time')),
        this.#timeout,
      );
    });
    try {
      if (!this.#assumeNoEviction) await Promise.race([this.#ensureNoEviction(), timeout]);
      const result = await Promise.race([this.#set(this.#prefix + key, ttl), timeout]);
      if (result === 'OK') return true;
      if (result === null) return false;
      // anything else is not an answer to SET NX (a proxy or a client bug): fail closed
      throw new ReplayStoreError('replay_store_error', 'Redis answered SET NX unexpectedly');
    } catch (cause) {
      if (cause instanceof ReplayStoreError) throw cause;
      throw new ReplayStoreError('replay_store_error', 'Redis refused the replay check', { cause });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Once: warns when Redis reports no AOF (a restart would forget every
   * entry and reopen replays). Never blocks or fails a request; an unanswered INFO is ignored.
   */
  #checkPersistence(): void {
    this.#persistenceChecked = true;
    if (this.#readInfo === undefined) return;
    this.#readInfo().then(
      (info) => {
        if (persists(info)) return;
        try {
          this.#onWarning(
            'popkit: Redis reports no AOF persistence (aof_enabled:0): after a Redis restart, DPoP proofs accepted before it could be accepted again. Enable appendonly (appendfsync everysec).',
          );
        } catch {
          // the warning is advice; a throwing logger changes nothing
        }
      },
      () => undefined,
    );
  }

  /** Resolves when Redis is known not to evict; the verdict is kept `policyCheckInterval` ms. */
  #ensureNoEviction(): Promise<void> {
    const now = Date.now();
    if (this.#policyCheck !== undefined && now - this.#policyCheckedAt < this.#policyCheckInterval)
      return this.#policyCheck;
    this.#policyCheckedAt = now;
    let unreachable = false;
    const check = this.#readPolicies().then(
      (policies) => {
        const bad = policies.find((p) => p !== SAFE_POLICY);
        if (policies.length === 0 || bad !== undefined || policies.includes(undefined)) {
          throw new ReplayStoreError(
            'replay_store_error',
            bad === undefined
              ? 'Redis did not report its maxmemory-policy; set it to noeviction, or pass assumeNoEviction: true if the operator guarantees it'
              : `Redis maxmemory-policy is "${bad}", which can evict replay entries and let a proof be used twice; set maxmemory-policy to noeviction`,
          );
        }
      },
      (cause: unknown) => {
        // An error Redis answered (CONFIG disabled, no permission) is a verdict; anything else
        // (not connected yet, a timeout) only means it could not be asked.
        const name = (cause as { name?: unknown } | null)?.name;
        unreachable = !(typeof name === 'string' && /ReplyError|ErrorReply/.test(name));
        throw new ReplayStoreError(
          'replay_store_error',
          unreachable
            ? 'Redis could not be asked for its maxmemory-policy'
            : 'Redis refused CONFIG GET maxmemory-policy; allow it, or pass assumeNoEviction: true if the operator guarantees noeviction',
          { cause },
        );
      },
    );
    // A verdict (a bad or unreadable policy) is kept for one second, so a misconfigured Redis is
    // not asked on every request yet fixed settings are picked up quickly; when Redis could not
    // be asked at all, the next request asks again.
    check.catch(() => {
      if (this.#policyCheck !== check) return;
      if (unreachable) this.#policyCheck = undefined;
      else this.#policyCheckedAt = Date.now() - this.#policyCheckInterval + 1000;
    });
    this.#policyCheck = check;
    return check;
  }
}
