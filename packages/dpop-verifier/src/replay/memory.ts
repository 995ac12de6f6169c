import { AccountTable, InvariantBroken, corrupt } from './accounts.ts';
import { fingerprint64, fp, place } from './fingerprint.ts';
import type { ReplayStore, ReplayStoreStats } from './types.ts';
import { ReplayStoreError } from './types.ts';
import type { MemoryReplayStoreOptions } from './memory-size.ts';
import { BLOCK_SHIFT, memorySize, refusal } from './memory-size.ts';
import { verifyTables } from './memory-verify.ts';
import { warnIfManyIsolates } from './many-isolates.ts';

export type { MemoryReplayStoreOptions } from './memory-size.ts';

// The invariants of the tables are listed in memory-size.ts (checked by [VERIFY] below).

/** Method keys of the store's self-check and raw tables, for tests. @internal */
export const VERIFY: unique symbol = Symbol('popkit.replay.verify');
/** @internal */
export const RAW: unique symbol = Symbol('popkit.replay.raw');
/** @internal */
export const SETTLE: unique symbol = Symbol('popkit.replay.settle');

/**
 * Slots per sweep block: the sweep reads one word to skip a block with nothing expired, and
 * scans the 16 slots (4 cache lines) of a block that has.
 */
const BLOCK = 1 << BLOCK_SHIFT;
/** A block's lowest expiry when it holds no entry. */
const NONE = 0xffffffff;
/** Slots of sweep credit per insert, and per call while above the soft limit. */
const SWEEP = 4;
const SWEEP_UNDER_PRESSURE = 1024;
/**
 * The sweep also covers the whole table once per this many ms of clock time, so an expired
 * entry lingers about this long while calls keep coming (the work is spread over the calls).
 */
const PASS_MS = 2_000;
/** The latest expiry second a table word holds (0 marks an empty slot). */
const MAX_EXPIRY = 0xfffffffe;
/** Most blocks holding expired entries one call clears: 1,024 slots. */
const MAX_DIRTY_BLOCKS = 1024 >>> BLOCK_SHIFT;

/**
 * A bounded, fair, in-process replay store for one server instance (RFC 9449 §11.1).
 *
 * **Memory**: an open-addressing hash table (linear probing, at most 80% full) in typed arrays,
 * allocated once: each live proof costs a keyed 64-bit fingerprint of its key, its expiry
 * second and its account's record, 20 bytes of table per entry of capacity, plus one 16-byte
 * record per distinct account (grown on demand). No per-entry objects, nothing for the GC to
 * trace. Fingerprints, home slots and buckets are keyed with random bits drawn per store, so
 * no collision can be computed ahead.
 *
 * **Bounded work**: expired entries are reclaimed by a cursor that sweeps a share of the
 * table on every call (the whole table every 2 s of clock time, more under pressure), a block
 * of 16 slots at a time, skipping a block whose lowest expiry is still ahead. One call clears
 * at most 64 blocks (1,024 slots): a mass expiry (one client's chosen `iat` making half the
 * table expire in one second) is spread over the following calls instead of stalling one.
 *
 * **Lifetime**: an entry lives until the `expiresAt` the verifier computed (rounded up to the
 * second), which is exactly when the proof would stop being accepted anyway.
 *
 * **Fairness by account** (the guarantee): below half its capacity the store admits every new
 * proof; above it, the half is shared max-min fairly between accounts (an access token's
 * subject, an authenticated client, else a key: what the verifier passes as `scope`): an
 * account may add entries while it holds fewer than the fair level, the level at which the
 * accounts' holdings capped at it add up to half the capacity. An account that needs less
 * than an equal share of that half is never refused until the store is entirely full, however
 * many keys another account uses. Nothing is ever evicted early (eviction would reopen a
 * replay window): a refused proof fails closed with 503 and `Retry-After`, with `reason`
 * `replay_over_share` (that account is sending more than its share) or `replay_store_full`.
 *
 * **Restarts**: the store remembers only what it accepted itself. `since` (its start) and
 * `epoch` (random per store) let the verifier refuse what it may have forgotten: proofs whose
 * `iat` predates `since`, and nonces issued for another epoch.
 *
 * For several server instances use a shared store: `RedisReplayStore`, `DurableObjectReplayStore`
 * (Cloudflare Workers), `DenoKvReplayStore` (Deno Deploy). On a runtime that runs many isolates
 * (Workers, Deno Deploy, Vercel and Netlify edge) the store logs one warning saying so, unless
 * built with `{ singleInstance: true }`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #now: () => number;
  readonly #capacity: number;
  readonly #soft: number;
  /** Three quarters of the capacity: above it, the rest is shared by what is left. */
  readonly #hard: number;
  readonly #slots: number;
  /** Per slot: fingerprint hi, lo; expiry second (0 = empty); account record index. */
  readonly #table: Uint32Array;
  /** Per block of BLOCK slots: a lower bound of its entries' expiry seconds (NONE = none). */
  readonly #blockMin: Uint32Array;
  #accounts: AccountTable;
  /** Hash keys (slots; accounts), drawn on first use: Workers forbid random values at start-up. */
  #seeds: Uint32Array | undefined;
  #epoch: string | undefined;
  #since: number;
  #used = 0;
  #cursor = 0; // the next block the sweep looks at
  #credit = 0; // sweep slots owed, less than a block
  #owed = 0; // sweep blocks owed
  #refusedFull = 0;
  #refusedShare = 0;
  #sweptAt = 0; // clock (ms) the time-driven sweep has covered
  #resets = 0;

  constructor(options: MemoryReplayStoreOptions = {}) {
    const { capacity, slots, now, singleInstance } = memorySize(options);
    if (!singleInstance) warnIfManyIsolates();
    this.#capacity = capacity;
    this.#now = now;
    this.#slots = slots;
    this.#soft = Math.floor(capacity / 2);
    this.#hard = this.#soft + Math.floor((capacity - this.#soft) / 2);
    this.#table = new Uint32Array(slots * 4);
    this.#blockMin = new Uint32Array(Math.ceil(slots / BLOCK)).fill(NONE);
    this.#accounts = new AccountTable(capacity);
    this.#since = now();
  }

  /**
   * When this store started remembering (ms since the epoch): a proof accepted before then, by
   * an earlier process, is unknown to it. The verifier refuses proofs whose `iat` is older.
   */
  get since(): number {
    return this.#since;
  }

  /**
   * Random per store (and new after a reset): the verifier binds its nonces to it, so a nonce
   * issued before a restart is refused with `use_dpop_nonce` and a fresh one.
   */
  get epoch(): string {
    if (this.#epoch === undefined) {
      const words = crypto.getRandomValues(new Uint32Array(2));
      this.#epoch = words[0]!.toString(36) + words[1]!.toString(36);
    }
    return this.#epoch;
  }

  /**
   * Records `key` if it is not live: `true` on first use, `false` for a replay. Throws
   * {@link ReplayStoreError} when the proof cannot be recorded (see the fairness rule above).
   *
   * @param key a digest of (jkt, jti). A 43-character key whose first 12 characters are
   *   base64url is taken as a base64url SHA-256 digest (its first 64 bits are its identity);
   *   any other key is hashed in full.
   * @param expiresAt ms since the epoch when the proof stops being acceptable.
   * @param scope the account the proof is for: the unit of fairness.
   */
  useOnce(key: string, expiresAt: number, scope = ''): boolean {
    if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt))
      throw new ReplayStoreError('replay_store_error', 'expiresAt must be a number of ms');
    try {
      return this.#useOnce(key, expiresAt, scope);
    } catch (e) {
      if (!(e instanceof InvariantBroken)) throw e;
      this.#reset(e);
      throw new ReplayStoreError('replay_store_error', 'the replay store failed a self-check', {
        cause: e,
      });
    }
  }

  #useOnce(key: string, expiresAt: number, scope: string): boolean {
    const nowMs = this.#now();
    const nowSec = Math.floor(nowMs / 1000);
    // 1. The sweep's share, first: it releases account records (see AccountTable).
    // (credit in slots, its fraction of a block carried over: a block at a time, no rounding up)
    let credit = this.#credit + (this.#used >= this.#soft ? SWEEP_UNDER_PRESSURE : SWEEP);
    const blocks = this.#blockMin.length;
    if (nowMs > this.#sweptAt) {
      const pass = blocks * BLOCK;
      credit += Math.min(Math.ceil((pass * (nowMs - this.#sweptAt)) / PASS_MS), pass);
      this.#sweptAt = nowMs;
    }
    const owed = Math.min(this.#owed + (credit >>> BLOCK_SHIFT), blocks);
    this.#credit = credit & (BLOCK - 1);
    this.#owed = this.#used === 0 ? 0 : this.#sweep(nowSec, owed);
    // 2. The key.
    const seeds = (this.#seeds ??= this.#draw());
    fingerprint64(key, seeds[0]!, seeds[1]!);
    const hi = fp.hi;
    const lo = fp.lo;
    const table = this.#table;
    const slots = this.#slots;
    let i = this.#home(hi, lo);
    for (let probes = 0; ; probes++) {
      if (probes === slots) throw corrupt('no empty slot');
      const o = i * 4;
      const exp = table[o + 2]!;
      if (exp === 0) break;
      if (table[o] === hi && table[o + 1] === lo) {
        if (exp > nowSec) return false;
        // The same key, expired: forget it and look for a free slot afresh (once: it is gone).
        this.#delete(i);
        i = this.#home(hi, lo);
        while (table[i * 4 + 2] !== 0) {
          if (++probes > 2 * slots) throw corrupt('no empty slot');
          if (++i === slots) i = 0;
        }
        break;
      }
      if (++i === slots) i = 0;
    }
    // 3. The account, and the fairness rule: nothing below releases a record.
    const accounts = this.#accounts;
    let r = accounts.find(scope);
    if (this.#used >= this.#soft) {
      if (this.#used >= this.#capacity) {
        this.#refusedFull++;
        throw refusal('replay_store_full', 'the replay store is full');
      }
      const held = r < 0 ? 0 : accounts.count(r);
      if (
        held >= accounts.level(this.#soft) ||
        // the last quarter: each account may take only a share of what is left, so accounts
        // flooding one after another never fill it (each leaves the others most of the rest)
        (this.#used >= this.#hard &&
          held * (accounts.size + (r < 0 ? 2 : 1)) >= this.#capacity - this.#used)
      ) {
        this.#refusedShare++;
        throw refusal(
          'replay_over_share',
          'this account holds more than its share of the replay store',
        );
      }
    }
    if (r < 0) r = accounts.add();
    accounts.increment(r);
    const o = i * 4;
    // at least to the next second (a proof at the very edge of its window is still recorded,
    // so concurrent copies of it are refused); at most what a table word holds
    const exp = Math.min(Math.max(Math.ceil(expiresAt / 1000), nowSec + 1), MAX_EXPIRY);
    table[o] = hi;
    table[o + 1] = lo;
    table[o + 2] = exp;
    table[o + 3] = r;
    const b = i >>> BLOCK_SHIFT;
    if (exp < this.#blockMin[b]!) this.#blockMin[b] = exp;
    this.#used++;
    return true;
  }

  /** Live entries (plus expired ones not yet swept). */
  get size(): number {
    return this.#used;
  }

  /** Most live entries. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * The fair level above the soft limit: an account holding fewer entries may add one (see the
   * fairness rule); the capacity while every account fits in half of it.
   */
  fairShare(): number {
    const level = this.#accounts.level(this.#soft);
    return level === Infinity ? this.#capacity : Math.floor(level);
  }

  /** Fill level and refusals, for metrics. */
  stats(): ReplayStoreStats {
    return {
      entries: this.#used,
      capacity: this.#capacity,
      fill: this.#used / this.#capacity,
      keys: this.#accounts.size,
      refusedFull: this.#refusedFull,
      refusedOverShare: this.#refusedShare,
      bytes: this.#table.byteLength + this.#blockMin.byteLength + this.#accounts.bytes,
    };
  }

  /** Draws the keys: hashing and placing keys (2 + 2 words), and accounts' (2 + 2). */
  #draw(): Uint32Array {
    const seeds = crypto.getRandomValues(new Uint32Array(8));
    this.#accounts.key(seeds[4]!, seeds[5]!, seeds[6]!, seeds[7]!);
    return seeds;
  }

  /**
   * Visits up to `owed` blocks from the cursor, clearing the expired entries of at most
   * `MAX_DIRTY_BLOCKS` of them; returns the blocks still owed.
   */
  #sweep(nowSec: number, owed: number): number {
    const mins = this.#blockMin;
    let b = this.#cursor;
    let dirty = 0;
    while (owed > 0) {
      if (mins[b]! <= nowSec) {
        if (dirty === MAX_DIRTY_BLOCKS) break;
        this.#sweepBlock(b, nowSec);
        dirty++;
      }
      owed--;
      if (++b === mins.length) b = 0;
    }
    this.#cursor = b;
    return owed;
  }

  /**
   * Removes a block's expired entries and records the exact lowest expiry of those left. (The
   * loop reads `expiry - 1` unsigned, so an empty slot reads NONE: no branch depends on
   * whether a slot is taken, a coin toss per slot that cost more than the reads; the two
   * branches left are rarely taken.)
   */
  #sweepBlock(b: number, nowSec: number): void {
    const table = this.#table;
    const end = Math.min((b + 1) * BLOCK, this.#slots);
    const bound = this.#slots + BLOCK;
    let least = NONE;
    for (let i = b * BLOCK, steps = 0; i < end; steps++) {
      if (steps > bound) throw corrupt('sweep');
      const e1 = (table[i * 4 + 2]! - 1) >>> 0;
      if (e1 < nowSec) {
        // A later entry may move into slot i (and only into slots from i on): look at it again.
        this.#delete(i);
        continue;
      }
      if (e1 < least) least = e1;
      i++;
    }
    this.#blockMin[b] = least === NONE ? NONE : least + 1;
  }

  /** The home slot of a fingerprint: a keyed mix of all its bits, for any table size. */
  #home(hi: number, lo: number): number {
    return Math.floor(
      (place(hi, lo, this.#seeds![2]!, this.#seeds![3]!) * this.#slots) / 4294967296,
    );
  }

  /** Backward-shift deletion: keeps every probe chain unbroken without tombstones. */
  #delete(slot: number): void {
    const table = this.#table;
    const slots = this.#slots;
    this.#accounts.release(table[slot * 4 + 3]!);
    this.#used--;
    let hole = slot;
    let j = slot;
    for (let steps = 0; ; steps++) {
      if (steps === slots) throw corrupt('no empty slot');
      if (++j === slots) j = 0;
      const o = j * 4;
      if (table[o + 2] === 0) break;
      const home = this.#home(table[o]!, table[o + 1]!);
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

  /**
   * After a broken invariant: log once, then start afresh as after a restart (new keys, epoch
   * and `since`), so the verifier refuses whatever the lost entries would have caught.
   */
  #reset(e: InvariantBroken): void {
    if (this.#resets++ === 0) {
      console.error(
        `popkit: MemoryReplayStore ${e.message}; the store starts afresh (proofs and nonces from before are refused)`,
      );
    }
    this.#table.fill(0);
    this.#blockMin.fill(NONE);
    this.#accounts = new AccountTable(this.#capacity);
    this.#seeds = undefined;
    this.#epoch = undefined;
    this.#since = Math.max(this.#now(), this.#since);
    this.#used = 0;
    this.#cursor = 0;
    this.#credit = 0;
    this.#owed = 0;
  }

  /** Checks every invariant (see memory-size.ts): O(table), for tests. @internal */
  [VERIFY](): void {
    verifyTables({
      table: this.#table,
      slots: this.#slots,
      blockMin: this.#blockMin,
      used: this.#used,
      accounts: this.#accounts,
      home: (hi, lo) => this.#home(hi, lo),
    });
  }

  /** Clears every expired entry now, however many (tests only: a full, unbounded sweep). @internal */
  [SETTLE](): void {
    const nowSec = Math.floor(this.#now() / 1000);
    for (let b = 0; b < this.#blockMin.length; b++)
      if (this.#blockMin[b]! <= nowSec) this.#sweepBlock(b, nowSec);
  }

  /** The raw tables, to corrupt them in tests. @internal */
  [RAW](): { table: Uint32Array; records: Uint32Array; heads: Uint32Array } {
    return { table: this.#table, ...this.#accounts.raw };
  }
}
