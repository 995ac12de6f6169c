/**
 * A replay store shared by every isolate of a Deno Deploy app, or every process opening the
 * same KV database (RFC 9449 §11.1), in Deno KV: published as `@popkit/dpop-verifier/deno-kv`
 * (`src/deno-kv/index.ts`). Structural types only: no Deno types, no `node:` module.
 * @module
 */
import type { ReplayStore } from './types.ts';
import { ReplayStoreError } from './types.ts';
import { DPoPConfigError } from '../errors.ts';
import type { OptionNames } from '../options.ts';
import { rejectUnknownOptions } from '../options.ts';

/** A Deno KV key part (structural `Deno.KvKeyPart`). */
export type DenoKvKeyPart = string | number | bigint | boolean | Uint8Array;

/** An atomic operation (structural `Deno.AtomicOperation`). */
export interface DenoKvAtomicLike {
  check(...checks: Array<{ key: DenoKvKeyPart[]; versionstamp: string | null }>): DenoKvAtomicLike;
  set(key: DenoKvKeyPart[], value: unknown, options?: { expireIn?: number }): DenoKvAtomicLike;
  commit(): Promise<{ ok: boolean }>;
}

/** A Deno KV database (structural `Deno.Kv`, from `Deno.openKv()`). */
export interface DenoKvLike {
  get(key: DenoKvKeyPart[]): Promise<{ value: unknown; versionstamp: string | null }>;
  atomic(): DenoKvAtomicLike;
}

/** Options of {@link DenoKvReplayStore}. */
export interface DenoKvReplayStoreOptions {
  /** The database: `await Deno.openKv()`. */
  kv: DenoKvLike;
  /** Key prefix. Default `['popkit', 'dpop', 'jti']`. */
  prefix?: DenoKvKeyPart[];
  /** Milliseconds to wait for KV before failing closed (503). Default 1,000. */
  timeout?: number;
}

/** The names of {@link DenoKvReplayStoreOptions}, for the unknown-option check. @internal */
const DENO_KV_STORE_OPTION_NAMES = {
  kv: true,
  prefix: true,
  timeout: true,
} as const satisfies OptionNames<DenoKvReplayStoreOptions>;

/** Reads and commits per use before failing closed (each lost race means another won). */
const ATTEMPTS = 4;
/** A local database busy with another process's write (SQLite), and how often to retry it. */
const BUSY = /database is locked|SQLITE_BUSY/i;
const BUSY_ATTEMPTS = 16;
/**
 * Extra lifetime given to KV's own expiry (`expireIn`), beyond `expiresAt`: the store decides
 * liveness from the stored `expiresAt` itself, so KV collecting an entry late is harmless, and
 * this margin makes sure it never collects one early (clocks of Deploy regions differ).
 */
const EXPIRY_MARGIN = 60_000;

/**
 * A replay store in Deno KV, shared by every isolate on Deno Deploy (and by every process
 * opening the same local database): each proof is one KV entry, its value the proof's
 * `expiresAt`, written by an atomic check-and-set (`check(versionstamp).set()`), so two
 * isolates receiving the same proof at once accept it exactly once.
 *
 * KV expires entries lazily (`expireIn` deletes some time after), so an expired entry may still
 * be read: the store reads the entry first, treats it as absent once its `expiresAt` has passed,
 * and replaces it with a check on its versionstamp. A commit that fails means another isolate
 * wrote the key in between: the store reads again (at most 4 attempts, then fails closed). A
 * local database file shared by processes may answer "database is locked" under contention:
 * retried after a short random pause (at most 16 times, within `timeout`). Any other
 * KV error, an answer later than `timeout`, or an unexpected value throws
 * {@link ReplayStoreError} (`replay_store_error`): the verifier answers 503, never accepts.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class DenoKvReplayStore implements ReplayStore {
  readonly #kv: DenoKvLike;
  readonly #prefix: DenoKvKeyPart[];
  readonly #timeout: number;

  constructor(options: DenoKvReplayStoreOptions) {
    if (options === null || typeof options !== 'object')
      throw new DPoPConfigError('options', 'must be an object');
    rejectUnknownOptions(options, DENO_KV_STORE_OPTION_NAMES, 'DenoKvReplayStore');
    const { kv, prefix = ['popkit', 'dpop', 'jti'], timeout = 1000 } = options;
    if (
      kv === null ||
      typeof kv !== 'object' ||
      typeof kv.get !== 'function' ||
      typeof kv.atomic !== 'function'
    ) {
      throw new DPoPConfigError('kv', 'must be a Deno.Kv (await Deno.openKv())');
    }
    if (!Array.isArray(prefix))
      throw new DPoPConfigError('prefix', 'must be an array of key parts');
    if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout))
      throw new DPoPConfigError('timeout', 'must be a positive number of ms');
    this.#kv = kv;
    this.#prefix = [...prefix];
    this.#timeout = timeout;
  }

  async useOnce(key: string, expiresAt: number): Promise<boolean> {
    if (typeof key !== 'string' || key.length === 0)
      throw new ReplayStoreError('replay_store_error', 'the replay key must be a string');
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))
      throw new ReplayStoreError('replay_store_error', 'expiresAt must be a number of ms');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.#timeout} ms`)),
        this.#timeout,
      );
    });
    try {
      const answer = this.#use([...this.#prefix, key], expiresAt);
      answer.catch(() => undefined); // (the deadline may win)
      return await Promise.race([answer, deadline]);
    } catch (e) {
      throw new ReplayStoreError(
        'replay_store_error',
        `the Deno KV replay store failed: ${e instanceof Error ? e.message : 'error'}`,
        { cause: e },
      );
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async #use(key: DenoKvKeyPart[], expiresAt: number): Promise<boolean> {
    let busy = 0;
    for (let attempt = 0; attempt < ATTEMPTS;) {
      let existing: { value: unknown; versionstamp: string | null };
      let result: { ok: boolean };
      const now = Date.now();
      try {
        existing = await this.#kv.get(key);
        if (existing.versionstamp !== null) {
          // (NaN or Infinity: never written by this store; refused, not read as "expired")
          if (typeof existing.value !== 'number' || !Number.isFinite(existing.value))
            throw new Error('an entry holds no expiry');
          if (existing.value > now) return false; // live: a replay
        }
        // absent, or expired but not yet collected: replace exactly what was read
        const expireIn = Math.max(1, Math.ceil(expiresAt - now)) + EXPIRY_MARGIN;
        result = await this.#kv
          .atomic()
          .check({ key, versionstamp: existing.versionstamp })
          .set(key, expiresAt, { expireIn })
          .commit();
      } catch (e) {
        // A local database opened by several processes answers SQLITE_BUSY under contention:
        // nothing was written (or, if it was, the next read sees it and refuses), so reading
        // again is safe. Any other error fails closed.
        if (!(e instanceof Error && BUSY.test(e.message)) || ++busy > BUSY_ATTEMPTS) throw e;
        await new Promise((r) => setTimeout(r, 2 + Math.random() * 8 * busy));
        continue;
      }
      if (result.ok === true) return true;
      if (result.ok !== false) throw new Error('an unexpected commit result');
      attempt++; // another isolate wrote the key in between: read what it wrote
    }
    throw new Error(`the key kept changing (${ATTEMPTS} attempts)`);
  }
}
