import { DPoPConfigError } from '../errors.ts';
import type { ReplayStore } from './types.ts';
import { ReplayStoreError } from './types.ts';

/** Options of {@link MemoryReplayStore}. */
export interface MemoryReplayStoreOptions {
  /** Most live entries; when full, new proofs are refused (503), never admitted. Default 100,000. */
  maxEntries?: number;
  /** Most live entries per key thumbprint, so one client cannot fill the store. Default 10,000. */
  maxPerKey?: number;
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number;
}

const BUCKET_MS = 1000;

/** Live entries of one key thumbprint. */
interface Quota {
  readonly scope: string;
  count: number;
}

/**
 * A bounded in-process replay store for one server instance. O(1) insert and amortised O(1)
 * expiry: entries are grouped in one-second buckets by expiry time and whole buckets are dropped
 * as time passes (no per-entry timers, no scans). When full, or when one key holds `maxPerKey`
 * live entries, it refuses (the request fails with 503) rather than evicting, because eviction
 * would reopen a replay window. Size it at (peak proofs per second) x (how long a proof stays
 * acceptable: maxAge + clockTolerance, or the nonce lifetime when nonces are on); for several
 * instances use `RedisReplayStore`.
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #maxEntries: number;
  readonly #maxPerKey: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Quota>(); // key -> its scope's quota
  readonly #buckets = new Map<number, string[]>(); // expiry bucket -> keys
  readonly #quotas = new Map<string, Quota>(); // scope -> live entries
  #nextBucket = -1; // first bucket not yet swept
  #lastBucket = -1; // most recent bucket written, and its list (most inserts share it)
  #lastList: string[] = [];

  constructor(options: MemoryReplayStoreOptions = {}) {
    const { maxEntries = 100_000, maxPerKey = 10_000, now = Date.now } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new DPoPConfigError('maxEntries', 'must be a positive integer');
    if (!Number.isInteger(maxPerKey) || maxPerKey < 1)
      throw new DPoPConfigError('maxPerKey', 'must be a positive integer');
    if (typeof now !== 'function') throw new DPoPConfigError('now', 'must be a function');
    this.#maxEntries = maxEntries;
    this.#maxPerKey = maxPerKey;
    this.#now = now;
  }

  useOnce(key: string, expiresAt: number, scope = ''): boolean {
    const now = this.#now();
    this.#sweep(now);
    if (this.#entries.has(key)) return false;
    if (expiresAt <= now) return true; // already outside every acceptance window
    if (this.#entries.size >= this.#maxEntries) {
      throw new ReplayStoreError('replay_store_full', 'the replay store is full');
    }
    let quota = this.#quotas.get(scope);
    if (quota === undefined) {
      quota = { scope, count: 0 };
      this.#quotas.set(scope, quota);
    } else if (scope !== '' && quota.count >= this.#maxPerKey) {
      throw new ReplayStoreError(
        'replay_store_full',
        'the replay store holds too many proofs for this key',
      );
    }
    quota.count++;
    this.#entries.set(key, quota);
    const bucket = Math.ceil(expiresAt / BUCKET_MS);
    if (bucket === this.#lastBucket) {
      this.#lastList.push(key);
    } else {
      let list = this.#buckets.get(bucket);
      if (list === undefined) {
        list = [];
        this.#buckets.set(bucket, list);
      }
      list.push(key);
      this.#lastBucket = bucket;
      this.#lastList = list;
    }
    if (this.#nextBucket < 0) this.#nextBucket = Math.floor(now / BUCKET_MS);
    return true;
  }

  /** Number of live entries. */
  get size(): number {
    return this.#entries.size;
  }

  #sweep(now: number): void {
    const last = Math.floor(now / BUCKET_MS); // buckets <= last have expired
    if (this.#nextBucket < 0 || this.#nextBucket > last) return;
    if (this.#entries.size === 0) {
      this.#buckets.clear();
      this.#lastBucket = -1;
      this.#nextBucket = last + 1;
      return;
    }
    // After a long idle gap, iterate the (few) live buckets instead of every elapsed second.
    if (last - this.#nextBucket > this.#buckets.size) {
      for (const bucket of [...this.#buckets.keys()]) if (bucket <= last) this.#drop(bucket);
    } else {
      for (let b = this.#nextBucket; b <= last; b++) this.#drop(b);
    }
    this.#nextBucket = last + 1;
  }

  #drop(bucket: number): void {
    const keys = this.#buckets.get(bucket);
    if (keys === undefined) return;
    this.#buckets.delete(bucket);
    if (bucket === this.#lastBucket) this.#lastBucket = -1;
    for (const key of keys) {
      const quota = this.#entries.get(key);
      if (quota === undefined) continue;
      this.#entries.delete(key);
      if (--quota.count === 0) this.#quotas.delete(quota.scope);
    }
  }
}
