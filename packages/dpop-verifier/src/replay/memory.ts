import { DPoPConfigError } from '../errors.ts';
import { fingerprint64, fmix32, fp } from './fingerprint.ts';
import type { ReplayStore, ReplayStoreStats } from './types.ts';
import { ReplayStoreError } from './types.ts';

/** Options of {@link MemoryReplayStore}. */
export interface MemoryReplayStoreOptions {
  /**
   * Memory budget in bytes, never exceeded: the table and its sweep index (20.08 bytes per entry
   * of capacity, allocated once) plus key records (up to 24 bytes per entry of capacity, grown
   * as distinct keys appear).
   * Default 32 MiB: a capacity of 761,249 live proofs. Ignored when `maxEntries` is set.
   */
  maxBytes?: number;
  /** Capacity in live proofs, instead of `maxBytes` (the tables are sized for it). */
  maxEntries?: number;
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Most table load at capacity (linear probing stays short: about 3 probes on average). */
const MAX_LOAD = 0.8;
/** Slots per sweep block: the sweep reads one word to skip a block with nothing expired. */
const BLOCK = 64;
const BLOCK_SHIFT = 6;
/** A block's lowest expiry when it holds no entry. */
const NONE = 0xffffffff;
/**
 * Worst-case bytes per entry of capacity: (16 + 4 / BLOCK) / MAX_LOAD of table and block index,
 * one 16-byte key record and up to two 4-byte bucket heads (when every entry has a key of its
 * own).
 */
const BYTES_PER_ENTRY = (16 + 4 / BLOCK) / MAX_LOAD + 24;
const DEFAULT_BYTES = 32 * 1024 * 1024;
const MIN_SLOTS = 8;
const MAX_CAPACITY = 2 ** 27;
const INITIAL_RECORDS = 1024;
/** Slots of sweep credit per insert, and per insert while over the soft limit. */
const SWEEP = 4;
const SWEEP_UNDER_PRESSURE = 64;
/**
 * The sweep also covers the whole table at least once per this many ms of clock time, so an
 * expired entry lingers less than this. A pass reads one word per block of 64 slots plus the
 * blocks holding expired entries, so it can be frequent: `size` and `stats().fill` then follow
 * the live entries closely.
 */
const PASS_MS = 2_000;
/** Least ms between two full sweeps before a refusal. */
const FULL_SWEEP_MS = 1000;

function randomWords(n: number): Uint32Array {
  return crypto.getRandomValues(new Uint32Array(n));
}

function nextPowerOfTwo(n: number): number {
  let p = MIN_SLOTS;
  while (p < n) p *= 2;
  return p;
}

/**
 * A bounded, fair, in-process replay store for one server instance (RFC 9449 §11.1).
 *
 * **Memory**: an open-addressing hash table (linear probing, at most 80% full) in typed arrays,
 * allocated once: each live proof costs a 64-bit fingerprint of its key, its expiry second and
 * the index of its key thumbprint's record, 20 bytes of table per entry of capacity, plus one
 * 16-byte record per distinct key (grown on demand). No per-entry objects, nothing for the GC to
 * trace. Expired entries are reclaimed by a cursor that sweeps a few slots per insert and the
 * whole table at least every 2 s of clock time (and before any refusal). The sweep goes a block
 * of 64 slots at a time and skips a block whose lowest expiry (one word per block, kept as
 * entries come and move) is still ahead, so a mostly empty or mostly fresh table costs a
 * 1/64th of a scan: at low traffic the clock-driven pass no longer reads the whole table.
 *
 * **Lifetime**: an entry lives until the `expiresAt` the verifier computed (rounded up to the
 * second), which is exactly when the proof would stop being accepted anyway; after that the
 * proof is rejected for its `iat` or its nonce.
 *
 * **Fairness** (the guarantee): below half its capacity the store admits every new proof; above
 * it, a key thumbprint may add entries only while it holds fewer than its fair share, half the
 * capacity divided by the number of keys holding entries. So keys at or above their share cannot
 * fill the store, and a key below its share is refused only when the store is entirely full.
 * Nothing is ever evicted early (eviction would reopen a replay window): a refused proof fails
 * closed with 503 and `Retry-After`, with `reason` `replay_over_share` (that key is sending more
 * than its share) or `replay_store_full`.
 *
 * For several server instances use `RedisReplayStore`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #now: () => number;
  readonly #capacity: number;
  readonly #soft: number;
  readonly #slots: number;
  readonly #maxRecords: number;
  /** Per slot: fingerprint hi, lo; expiry second (0 = empty); scope record index. */
  readonly #table: Uint32Array;
  /** Per block of BLOCK slots: a lower bound of its entries' expiry seconds (NONE = none). */
  readonly #blockMin: Uint32Array;
  /** Per scope record: fingerprint hi, lo; live entries; next record in bucket (index + 1). */
  #scopes: Uint32Array;
  /** Bucket heads of the scope records (index + 1; 0 = none). */
  #heads: Uint32Array;
  #scopeMask: number;
  /** Keys of the slot and fingerprint hashes, drawn on first use: Workers forbid random values at start-up. */
  #seedWords: Uint32Array | undefined;
  #freeScope = 0; // free list of scope records (index + 1)
  #nextFreshScope = 0;
  #used = 0;
  #keys = 0;
  #cursor = 0; // the next block the sweep looks at
  #credit = 0; // sweep slots owed, less than a block
  #refusedFull = 0;
  #refusedShare = 0;
  #sweptAt = 0; // clock (ms) the time-driven sweep has covered
  #fullSweepAt = -Infinity;
  #lastScope: string | undefined; // the last scope looked up, its fingerprint and record
  #lastHi = 0;
  #lastLo = 0;
  #lastRecord = -1;

  constructor(options: MemoryReplayStoreOptions = {}) {
    if (options === null || typeof options !== 'object')
      throw new DPoPConfigError('options', 'must be an object');
    if ('maxPerKey' in options) {
      throw new DPoPConfigError(
        'maxPerKey',
        'is gone: the store now shares its capacity fairly between keys (see "Capacity and floods")',
      );
    }
    const { maxBytes, maxEntries, now = Date.now } = options;
    if (typeof now !== 'function') throw new DPoPConfigError('now', 'must be a function');
    let capacity: number;
    if (maxEntries !== undefined) {
      if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_CAPACITY)
        throw new DPoPConfigError('maxEntries', `must be an integer from 1 to ${MAX_CAPACITY}`);
      capacity = maxEntries;
    } else {
      const bytes = maxBytes ?? DEFAULT_BYTES;
      if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 4 * BYTES_PER_ENTRY) {
        throw new DPoPConfigError(
          'maxBytes',
          `must be a number of bytes >= ${4 * BYTES_PER_ENTRY}`,
        );
      }
      capacity = Math.min(MAX_CAPACITY, Math.floor(bytes / BYTES_PER_ENTRY));
    }
    this.#capacity = capacity;
    this.#now = now;
    const slots = Math.max(MIN_SLOTS, Math.ceil(capacity / MAX_LOAD));
    this.#slots = slots;
    this.#soft = Math.floor(capacity / 2);
    this.#table = new Uint32Array(slots * 4);
    this.#blockMin = new Uint32Array(Math.ceil(slots / BLOCK)).fill(NONE);
    this.#maxRecords = capacity;
    const records = Math.min(INITIAL_RECORDS, capacity);
    this.#scopes = new Uint32Array(records * 4);
    this.#heads = new Uint32Array(nextPowerOfTwo(records));
    this.#scopeMask = this.#heads.length - 1;
  }

  /**
   * Records `key` if it is not live: `true` on first use, `false` for a replay. Throws
   * {@link ReplayStoreError} when the proof cannot be recorded (see the fairness rule above).
   *
   * @param key a digest of (jkt, jti); a 43-character base64url SHA-256 is used directly.
   * @param expiresAt ms since the epoch when the proof stops being acceptable.
   * @param scope the proof key's thumbprint: the unit of fairness.
   */
  useOnce(key: string, expiresAt: number, scope = ''): boolean {
    const nowMs = this.#now();
    const nowSec = Math.floor(nowMs / 1000);
    let credit = this.#credit + (this.#used >= this.#soft ? SWEEP_UNDER_PRESSURE : SWEEP);
    if (nowMs > this.#sweptAt) {
      // Clock-driven share of a full pass every PASS_MS, so expired entries linger < PASS_MS.
      // (After an idle gap of PASS_MS or more this is one full pass, once.)
      const pass = this.#blockMin.length * BLOCK;
      credit += Math.min(Math.ceil((pass * (nowMs - this.#sweptAt)) / PASS_MS), pass);
      this.#sweptAt = nowMs;
    }
    const blocks = Math.min(credit >>> BLOCK_SHIFT, this.#blockMin.length);
    this.#credit = credit & (BLOCK - 1);
    if (blocks > 0) this.#sweep(nowSec, blocks);
    const seeds = (this.#seedWords ??= randomWords(4));
    fingerprint64(key, seeds[0]!, seeds[1]!);
    const hi = fp.hi;
    const lo = fp.lo;
    const table = this.#table;
    const slots = this.#slots;
    let i = this.#home(hi);
    for (;;) {
      const o = i * 4;
      const exp = table[o + 2]!;
      if (exp === 0) break;
      if (table[o] === hi && table[o + 1] === lo) {
        if (exp > nowSec) return false;
        this.#delete(i); // the same key, expired: forget it and insert afresh
        return this.useOnce(key, expiresAt, scope);
      }
      if (++i === slots) i = 0;
    }
    if (expiresAt <= nowMs) return true; // already outside every acceptance window
    const record = this.#findScope(scope);
    if (this.#used >= this.#soft) {
      const refuse = (): boolean =>
        this.#used >= this.#capacity ||
        (this.#used >= this.#soft &&
          (record < 0 ? 0 : this.#scopes[record * 4 + 2]!) >= this.fairShare(record < 0 ? 1 : 0));
      if (refuse() && nowMs - this.#fullSweepAt >= FULL_SWEEP_MS) {
        // Before refusing, drop every expired entry (at most once a second: a flood of
        // refusals must not buy a full pass each).
        this.#fullSweepAt = nowMs;
        this.#sweep(nowSec, this.#blockMin.length);
      }
      if (this.#used >= this.#capacity) {
        this.#refusedFull++;
        throw new ReplayStoreError('replay_store_full', 'the replay store is full');
      }
      if (refuse()) {
        this.#refusedShare++;
        throw new ReplayStoreError(
          'replay_over_share',
          'this key holds more than its share of the replay store',
        );
      }
      // The sweep may have moved entries: find the free slot again.
      i = this.#home(hi);
      while (table[i * 4 + 2] !== 0) if (++i === slots) i = 0;
    }
    const r = record < 0 ? this.#addScope() : record;
    this.#scopes[r * 4 + 2]!++;
    const o = i * 4;
    table[o] = hi;
    table[o + 1] = lo;
    table[o + 2] = Math.max(Math.ceil(expiresAt / 1000), 1);
    table[o + 3] = r;
    const b = i >>> BLOCK_SHIFT;
    if (table[o + 2]! < this.#blockMin[b]!) this.#blockMin[b] = table[o + 2]!;
    this.#used++;
    return true;
  }

  /** Live entries (plus expired ones not yet swept, at most a few percent). */
  get size(): number {
    return this.#used;
  }

  /** Most live entries. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * A key's fair share above the soft limit: half the capacity divided by the number of keys
   * holding entries (`extra` counts a key about to join).
   */
  fairShare(extra = 0): number {
    return Math.max(1, Math.floor(this.#soft / Math.max(1, this.#keys + extra)));
  }

  /** Fill level and refusals, for metrics. */
  stats(): ReplayStoreStats {
    return {
      entries: this.#used,
      capacity: this.#capacity,
      fill: this.#used / this.#capacity,
      keys: this.#keys,
      refusedFull: this.#refusedFull,
      refusedOverShare: this.#refusedShare,
      bytes:
        this.#table.byteLength +
        this.#blockMin.byteLength +
        this.#scopes.byteLength +
        this.#heads.byteLength,
    };
  }

  /** Removes the expired entries of the next `blocks` blocks, skipping those with none. */
  #sweep(nowSec: number, blocks: number): void {
    if (this.#used === 0) return;
    const mins = this.#blockMin;
    let b = this.#cursor;
    for (let left = blocks; left > 0; left--) {
      if (mins[b]! <= nowSec) this.#sweepBlock(b, nowSec);
      if (++b === mins.length) b = 0;
    }
    this.#cursor = b;
  }

  /** Removes a block's expired entries and records the exact lowest expiry of those left. */
  #sweepBlock(b: number, nowSec: number): void {
    const table = this.#table;
    const end = Math.min((b + 1) * BLOCK, this.#slots);
    let min = NONE;
    for (let i = b * BLOCK; i < end;) {
      const exp = table[i * 4 + 2]!;
      if (exp !== 0 && exp <= nowSec) {
        // A later entry may move into slot i (and only into slots from i on): look at it again.
        this.#delete(i);
        continue;
      }
      if (exp !== 0 && exp < min) min = exp;
      i++;
    }
    this.#blockMin[b] = min;
  }

  /** The home slot of a fingerprint: keyed (attackers cannot aim at a slot), any table size. */
  #home(hi: number): number {
    return Math.floor((fmix32(hi ^ this.#seedWords![2]!) * this.#slots) / 4294967296);
  }

  /** Backward-shift deletion: keeps every probe chain unbroken without tombstones. */
  #delete(slot: number): void {
    const table = this.#table;
    const slots = this.#slots;
    this.#releaseScope(table[slot * 4 + 3]!);
    this.#used--;
    let hole = slot;
    let j = slot;
    for (;;) {
      if (++j === slots) j = 0;
      const o = j * 4;
      if (table[o + 2] === 0) break;
      const home = this.#home(table[o]!);
      // The entry at j may move into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      const h = hole * 4;
      table[h] = table[o]!;
      table[h + 1] = table[o + 1]!;
      table[h + 2] = table[o + 2]!;
      table[h + 3] = table[o + 3]!;
      // the moved entry's expiry now counts in the hole's block (its old block keeps a bound)
      const b = hole >>> BLOCK_SHIFT;
      if (table[o + 2]! < this.#blockMin[b]!) this.#blockMin[b] = table[o + 2]!;
      hole = j;
    }
    table[hole * 4 + 2] = 0;
  }

  #findScope(scope: string): number {
    if (scope === this.#lastScope) {
      const r = this.#lastRecord;
      if (r >= 0) return r; // (reset when that record is freed)
      fp.hi = this.#lastHi;
      fp.lo = this.#lastLo;
    } else {
      fingerprint64(scope, this.#seedWords![1]!, this.#seedWords![0]!);
      this.#lastScope = scope;
      this.#lastHi = fp.hi;
      this.#lastLo = fp.lo;
    }
    this.#lastRecord = this.#lookupScope();
    return this.#lastRecord;
  }

  #lookupScope(): number {
    const scopes = this.#scopes;
    let r = this.#heads[fmix32(fp.hi ^ this.#seedWords![3]!) & this.#scopeMask]!;
    while (r !== 0) {
      const o = (r - 1) * 4;
      if (scopes[o] === fp.hi && scopes[o + 1] === fp.lo) return r - 1;
      r = scopes[o + 3]!;
    }
    return -1;
  }

  /** Adds the record of the scope last looked up by `#findScope` (its fingerprint is in `fp`). */
  #addScope(): number {
    let r: number;
    if (this.#freeScope !== 0) {
      r = this.#freeScope - 1;
      this.#freeScope = this.#scopes[r * 4 + 3]!;
    } else {
      if (this.#nextFreshScope * 4 === this.#scopes.length) this.#growScopes();
      r = this.#nextFreshScope++;
    }
    const scopes = this.#scopes;
    const bucket = fmix32(fp.hi ^ this.#seedWords![3]!) & this.#scopeMask;
    const o = r * 4;
    scopes[o] = fp.hi;
    scopes[o + 1] = fp.lo;
    scopes[o + 2] = 0;
    scopes[o + 3] = this.#heads[bucket]!;
    this.#heads[bucket] = r + 1;
    this.#keys++;
    this.#lastRecord = r;
    return r;
  }

  /** Doubles the key records (up to one per entry of capacity) and relinks their buckets. */
  #growScopes(): void {
    const size = Math.min(this.#scopes.length / 2, this.#maxRecords); // (4 words a record)
    if (size * 4 <= this.#scopes.length)
      throw new ReplayStoreError('replay_store_full', 'the replay store is full');
    const old = this.#scopes;
    const scopes = new Uint32Array(size * 4);
    const heads = new Uint32Array(nextPowerOfTwo(size));
    const mask = heads.length - 1;
    let free = 0;
    for (let r = this.#nextFreshScope - 1; r >= 0; r--) {
      const o = r * 4;
      scopes[o] = old[o]!;
      scopes[o + 1] = old[o + 1]!;
      scopes[o + 2] = old[o + 2]!;
      if (old[o + 2] === 0) {
        scopes[o + 3] = free; // a free record
        free = r + 1;
      } else {
        const bucket = fmix32(old[o]! ^ this.#seedWords![3]!) & mask;
        scopes[o + 3] = heads[bucket]!;
        heads[bucket] = r + 1;
      }
    }
    this.#scopes = scopes;
    this.#heads = heads;
    this.#scopeMask = mask;
    this.#freeScope = free;
  }

  #releaseScope(r: number): void {
    const scopes = this.#scopes;
    const o = r * 4;
    if (--scopes[o + 2]! !== 0) return;
    const bucket = fmix32(scopes[o]! ^ this.#seedWords![3]!) & this.#scopeMask;
    let link = this.#heads[bucket]!;
    if (link === r + 1) {
      this.#heads[bucket] = scopes[o + 3]!;
    } else {
      while (link !== 0) {
        const lo = (link - 1) * 4;
        if (scopes[lo + 3] === r + 1) {
          scopes[lo + 3] = scopes[o + 3]!;
          break;
        }
        link = scopes[lo + 3]!;
      }
    }
    scopes[o + 3] = this.#freeScope;
    this.#freeScope = r + 1;
    this.#keys--;
    if (r === this.#lastRecord) this.#lastRecord = -1;
  }
}
