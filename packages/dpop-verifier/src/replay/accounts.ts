import { fingerprint64, fp, place } from './fingerprint.ts';
import { ReplayStoreError } from './types.ts';

/**
 * The live-entry count of every account holding entries in a {@link MemoryReplayStore}: the
 * unit of its fairness (an access token's subject, an authenticated client, else a key).
 * @internal
 *
 * Records are 4 words in one typed array (fingerprint hi, lo; live entries; next record in the
 * bucket chain or the free list, as index + 1), chained from keyed buckets, grown by doubling
 * up to `maxRecords`. A log-scale histogram of the counts (4 buckets per power of two) gives
 * the max-min fair level in at most {@link LEVELS} steps.
 *
 * **Lifetime rule**: an index returned by {@link find} or {@link add} names that account only
 * while its count is above 0 and no {@link release} ran since: look it up again after anything
 * that may release entries (the store's sweep). The store sweeps before it looks accounts up.
 *
 * Every chain and free-list walk is bounded by the number of records; a longer walk, or a
 * record that is not what the structure says, means a broken invariant and throws
 * {@link InvariantBroken}, never a spin.
 */
export class AccountTable {
  readonly #maxRecords: number;
  #records: Uint32Array;
  #heads: Uint32Array;
  #mask: number;
  #free = 0;
  #fresh = 0;
  #size = 0;
  #k0 = 0;
  #k1 = 0;
  #b0 = 0;
  #b1 = 0;
  readonly #histCount = new Uint32Array(LEVELS);
  readonly #histSum = new Float64Array(LEVELS);
  #last: string | undefined;
  #lastHi = 0;
  #lastLo = 0;
  #lastRecord = -1;

  constructor(maxRecords: number) {
    this.#maxRecords = maxRecords;
    const records = Math.min(INITIAL_RECORDS, maxRecords);
    this.#records = new Uint32Array(records * 4);
    this.#heads = new Uint32Array(nextPowerOfTwo(records));
    this.#mask = this.#heads.length - 1;
  }

  /** Sets the keys: of the account hash, and of the bucket mix (64 random bits each). */
  key(k0: number, k1: number, b0: number, b1: number): void {
    this.#k0 = k0;
    this.#k1 = k1;
    this.#b0 = b0;
    this.#b1 = b1;
  }

  /** The bucket of a fingerprint: a keyed mix of all its bits. */
  #bucket(hi: number, lo: number, mask = this.#mask): number {
    return place(hi, lo, this.#b0, this.#b1) & mask;
  }

  /** Accounts holding entries. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of the typed arrays. */
  get bytes(): number {
    return this.#records.byteLength + this.#heads.byteLength + LEVELS * 12;
  }

  /** The account's record index, or -1 when it holds no entry (see the lifetime rule). */
  find(account: string): number {
    if (account === this.#last) {
      if (this.#lastRecord >= 0) return this.#lastRecord;
    } else {
      fingerprint64(account, this.#k0, this.#k1);
      this.#last = account;
      this.#lastHi = fp.hi;
      this.#lastLo = fp.lo;
    }
    this.#lastRecord = this.#lookup(this.#lastHi, this.#lastLo);
    return this.#lastRecord;
  }

  /** Live entries of record `r`. */
  count(r: number): number {
    return this.#records[r * 4 + 2]!;
  }

  /** Adds a record, count 0, for the account last passed to {@link find} (which found none). */
  add(): number {
    let r: number;
    const records = this.#records;
    if (this.#free !== 0) {
      r = this.#free - 1;
      if (r >= this.#fresh || records[r * 4 + 2] !== 0) throw corrupt('free list');
      this.#free = records[r * 4 + 3]!;
    } else {
      if (this.#fresh * 4 === this.#records.length) this.#grow();
      r = this.#fresh++;
    }
    const table = this.#records;
    const bucket = this.#bucket(this.#lastHi, this.#lastLo);
    const o = r * 4;
    table[o] = this.#lastHi;
    table[o + 1] = this.#lastLo;
    table[o + 2] = 0;
    table[o + 3] = this.#heads[bucket]!;
    this.#heads[bucket] = r + 1;
    this.#size++;
    this.#lastRecord = r;
    return r;
  }

  /** One more live entry for record `r`. */
  increment(r: number): void {
    const records = this.#records;
    const c = records[r * 4 + 2]!;
    records[r * 4 + 2] = c + 1;
    this.#moved(c, c + 1);
  }

  /** One live entry fewer for record `r`; the record is freed when none is left. */
  release(r: number): void {
    const records = this.#records;
    const o = r * 4;
    if (r >= this.#fresh) throw corrupt('record index');
    const c = records[o + 2]!;
    if (c === 0) throw corrupt('count');
    records[o + 2] = c - 1;
    this.#moved(c, c - 1);
    if (c !== 1) return;
    // Unlink from its bucket chain (bounded by the number of records).
    const bucket = this.#bucket(records[o]!, records[o + 1]!);
    let link = this.#heads[bucket]!;
    if (link === r + 1) {
      this.#heads[bucket] = records[o + 3]!;
    } else {
      for (let steps = 0; ; steps++) {
        if (link === 0 || steps > this.#fresh) throw corrupt('bucket chain');
        const lo = (link - 1) * 4;
        if (records[lo + 3] === r + 1) {
          records[lo + 3] = records[o + 3]!;
          break;
        }
        link = records[lo + 3]!;
      }
    }
    records[o + 3] = this.#free;
    this.#free = r + 1;
    this.#size--;
    if (r === this.#lastRecord) this.#lastRecord = -1;
  }

  /**
   * The max-min fair level of `budget` entries over the accounts' counts: the level `L` at which
   * the counts capped at `L` add up to `budget` (water-filling). Accounts below it fit within
   * the budget; the accounts at or above it share what the others leave, equally. `Infinity`
   * when every count fits. Approximate within a histogram bucket (a factor of 2^(1/4)), at
   * least 1.
   */
  level(budget: number): number {
    let heavy = this.#size;
    let light = 0;
    const counts = this.#histCount;
    const sums = this.#histSum;
    for (let k = 1; k < LEVELS; k++) {
      const n = counts[k]!;
      if (n === 0) continue;
      const share = (budget - light) / heavy;
      if (sums[k]! >= share * n) return Math.max(1, share);
      light += sums[k]!;
      heavy -= n;
    }
    return Infinity;
  }

  /** Checks every invariant (tests and diagnostics; O(records)): counts, chains, histogram. */
  verify(): void {
    const records = this.#records;
    let live = 0;
    const seen = new Uint8Array(this.#fresh);
    for (let b = 0; b < this.#heads.length; b++) {
      let link = this.#heads[b]!;
      for (let steps = 0; link !== 0; steps++) {
        const r = link - 1;
        if (steps > this.#fresh || r >= this.#fresh || seen[r]) throw corrupt('bucket chain');
        seen[r] = 1;
        if (this.#bucket(records[r * 4]!, records[r * 4 + 1]!) !== b || records[r * 4 + 2] === 0)
          throw corrupt('record');
        live++;
        link = records[r * 4 + 3]!;
      }
    }
    if (live !== this.#size) throw corrupt('size');
    let link = this.#free;
    for (let steps = 0; link !== 0; steps++) {
      const r = link - 1;
      if (steps > this.#fresh || r >= this.#fresh || seen[r]) throw corrupt('free list');
      seen[r] = 1;
      link = records[r * 4 + 3]!;
    }
    if (seen.some((s) => s === 0)) throw corrupt('lost record');
  }

  #lookup(hi: number, lo: number): number {
    const records = this.#records;
    let link = this.#heads[this.#bucket(hi, lo)]!;
    for (let steps = 0; link !== 0; steps++) {
      if (steps > this.#fresh) throw corrupt('bucket chain');
      const o = (link - 1) * 4;
      if (records[o] === hi && records[o + 1] === lo) return link - 1;
      link = records[o + 3]!;
    }
    return -1;
  }

  /** Moves one account's count in the histogram. */
  #moved(from: number, to: number): void {
    const a = levelOf(from);
    const b = levelOf(to);
    if (a === b) {
      this.#histSum[a]! += to - from;
      return;
    }
    if (a !== 0) {
      this.#histCount[a]!--;
      this.#histSum[a]! -= from;
    }
    if (b !== 0) {
      this.#histCount[b]!++;
      this.#histSum[b]! += to;
    }
  }

  /** Doubles the records (up to `maxRecords`) and relinks their buckets. */
  #grow(): void {
    const size = Math.min(this.#records.length / 2, this.#maxRecords); // (4 words a record)
    if (size * 4 <= this.#records.length)
      throw new ReplayStoreError('replay_store_full', 'the replay store is full');
    const old = this.#records;
    const records = new Uint32Array(size * 4);
    const heads = new Uint32Array(nextPowerOfTwo(size));
    const mask = heads.length - 1;
    let free = 0;
    for (let r = this.#fresh - 1; r >= 0; r--) {
      const o = r * 4;
      records[o] = old[o]!;
      records[o + 1] = old[o + 1]!;
      records[o + 2] = old[o + 2]!;
      if (old[o + 2] === 0) {
        records[o + 3] = free;
        free = r + 1;
      } else {
        const bucket = this.#bucket(old[o]!, old[o + 1]!, mask);
        records[o + 3] = heads[bucket]!;
        heads[bucket] = r + 1;
      }
    }
    this.#records = records;
    this.#heads = heads;
    this.#mask = mask;
    this.#free = free;
  }

  /** For corruption tests only: the raw records and bucket heads. @internal */
  get raw(): { records: Uint32Array; heads: Uint32Array } {
    return { records: this.#records, heads: this.#heads };
  }
}

/** Histogram buckets: 4 per power of two, for counts up to 2^27. */
const LEVELS = 112;
const INITIAL_RECORDS = 1024;

/** The histogram bucket of a count (0 for none; increasing with the count). */
function levelOf(c: number): number {
  if (c < 4) return c;
  const m = 31 - Math.clz32(c);
  return (m - 1) * 4 + ((c >>> (m - 2)) & 3);
}

function nextPowerOfTwo(n: number): number {
  let p = 8;
  while (p < n) p *= 2;
  return p;
}

/** A broken invariant of a replay store's tables: the store fails closed and starts afresh. */
export class InvariantBroken extends Error {
  constructor(what: string) {
    super(`replay store invariant broken: ${what}`);
    this.name = 'InvariantBroken';
  }
}

export function corrupt(what: string): InvariantBroken {
  return new InvariantBroken(what);
}
