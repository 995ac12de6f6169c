/**
 * The options and sizing of `MemoryReplayStore` (its memory budget, validated once), and its
 * refusals (RFC 9449 §11.1: a store that cannot record a proof fails closed).
 * @module
 */
import { DPoPConfigError } from '../errors.ts';
import type { OptionNames } from '../options.ts';
import { rejectUnknownOptions } from '../options.ts';
import { ReplayStoreError } from './types.ts';

/*
 * Invariants of MemoryReplayStore (checked by its `[VERIFY]`, after every step of the model test):
 *
 * 1. Probe chains have no holes: every entry lies at its home slot or after it, with no empty
 *    slot between (cyclically). Backward-shift deletion keeps this without tombstones.
 * 2. `#used` is the number of non-empty slots, never more than `#capacity` (load <= 80%).
 * 3. A block's `#blockMin` is a lower bound of the expiry seconds of the entries in it
 *    (`NONE` when it may be empty): the sweep skips a block whose bound is still ahead.
 * 4. An account record's count equals the number of slots naming it, and `AccountTable.size`
 *    the number of records with a count above 0 (see AccountTable's lifetime rule: a record
 *    index stays valid only until the next release, so `useOnce` sweeps before it looks an
 *    account up, and never after).
 * 5. No loop runs longer than its table: probes and shifts are bounded by the slots, chain and
 *    free-list walks by the records. A longer walk is a broken invariant: the call fails
 *    closed (`replay_store_error`, a 503), the store logs once and starts afresh, as after a
 *    restart (a new `epoch` and `since`, so nothing it forgot can be replayed).
 * 6. Each call does bounded work: the sweep visits at most one pass of block words and clears
 *    at most `MAX_DIRTY_BLOCKS` blocks holding expired entries; what is left is owed to the
 *    next calls.
 */

/** Options of `MemoryReplayStore`. */
export interface MemoryReplayStoreOptions {
  /**
   * Memory budget in bytes, never exceeded: the table and its sweep index (20.31 bytes per entry
   * of capacity, allocated once) plus account records (up to 24 bytes per entry of capacity,
   * grown as distinct accounts appear).
   * Default 32 MiB: a capacity of 757,222 live proofs. Ignored when `maxEntries` is set.
   */
  maxBytes?: number;
  /** Capacity in live proofs, instead of `maxBytes` (the tables are sized for it). */
  maxEntries?: number;
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * This store is the only one accepting these proofs, on a runtime that runs many isolates
   * (Cloudflare Workers, Deno Deploy, Vercel and Netlify edge functions): silences the warning
   * logged once there. Default false.
   */
  singleInstance?: boolean;
}

/** The names of {@link MemoryReplayStoreOptions}, for the unknown-option check. @internal */
const MEMORY_STORE_OPTION_NAMES = {
  maxBytes: true,
  maxEntries: true,
  now: true,
  singleInstance: true,
} as const satisfies OptionNames<MemoryReplayStoreOptions>;

/** Most table load at capacity (linear probing stays short: about 3 probes on average). */
const MAX_LOAD = 0.8;
/** log2 of the slots per sweep block (16: a block is 4 cache lines; see memory.ts). @internal */
export const BLOCK_SHIFT = 4;
const BLOCK = 1 << BLOCK_SHIFT;
/**
 * Worst-case bytes per entry of capacity: (16 + 4 / BLOCK) / MAX_LOAD of table and block index,
 * one 16-byte account record and up to two 4-byte bucket heads (when every entry has an
 * account of its own).
 */
const BYTES_PER_ENTRY = (16 + 4 / BLOCK) / MAX_LOAD + 24;
const DEFAULT_BYTES = 32 * 1024 * 1024;
const MIN_SLOTS = 8;
const MAX_CAPACITY = 2 ** 27;
/**
 * The store's capacity in live proofs and its table's slots, from the options; throws
 * {@link DPoPConfigError}. @internal
 */
export function memorySize(options: MemoryReplayStoreOptions): {
  capacity: number;
  slots: number;
  now: () => number;
  singleInstance: boolean;
} {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  if ('maxPerKey' in options) {
    throw new DPoPConfigError(
      'maxPerKey',
      'is gone: the store now shares its capacity fairly between accounts (see "Capacity and floods")',
    );
  }
  rejectUnknownOptions(options, MEMORY_STORE_OPTION_NAMES, 'MemoryReplayStore');
  const { maxBytes, maxEntries, now = Date.now, singleInstance = false } = options;
  if (typeof now !== 'function') throw new DPoPConfigError('now', 'must be a function');
  if (typeof singleInstance !== 'boolean')
    throw new DPoPConfigError('singleInstance', 'must be a boolean');
  let capacity: number;
  if (maxEntries !== undefined) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_CAPACITY)
      throw new DPoPConfigError('maxEntries', `must be an integer from 1 to ${MAX_CAPACITY}`);
    capacity = maxEntries;
  } else {
    const bytes = maxBytes ?? DEFAULT_BYTES;
    if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 4 * BYTES_PER_ENTRY) {
      throw new DPoPConfigError('maxBytes', `must be a number of bytes >= ${4 * BYTES_PER_ENTRY}`);
    }
    capacity = Math.min(MAX_CAPACITY, Math.floor(bytes / BYTES_PER_ENTRY));
  }
  const slots = Math.max(MIN_SLOTS, Math.ceil(capacity / MAX_LOAD));
  return { capacity, slots, now, singleInstance };
}

/**
 * A refusal, without a stack trace: refusals are what a flood produces, so they must cost
 * little (capturing a stack took most of a refused call's time), and the stack says nothing.
 */
/** @internal */
export function refusal(reason: 'replay_store_full' | 'replay_over_share', message: string): Error {
  const E = Error as { stackTraceLimit?: number }; // (V8; elsewhere a harmless property)
  const limit = E.stackTraceLimit;
  E.stackTraceLimit = 0;
  try {
    return new ReplayStoreError(reason, message);
  } finally {
    E.stackTraceLimit = limit;
  }
}
