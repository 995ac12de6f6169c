/**
 * A replay store shared by every isolate of a Cloudflare Worker (RFC 9449 §11.1), in Durable
 * Objects: published as `@popkit/dpop-verifier/durable-object` (`src/durable-object/index.ts`).
 * Structural types only: no `@cloudflare/workers-types`, no `node:` module.
 * @module
 */
import type { ReplayStore } from './types.ts';
import { ReplayStoreError } from './types.ts';
import { DPoPConfigError } from '../errors.ts';
import type { OptionNames } from '../options.ts';
import { rejectUnknownOptions } from '../options.ts';

/** A Durable Object's transactional storage (structural: the KV API, also on SQLite objects). */
export interface DurableObjectStorageLike {
  get(key: string): Promise<unknown>;
  get(keys: string[]): Promise<Map<string, unknown>>;
  put(entries: Record<string, unknown>): Promise<void>;
  delete(keys: string[]): Promise<number>;
  list(options: { prefix: string; limit: number }): Promise<Map<string, unknown>>;
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** The `state` a Durable Object is constructed with (structural). */
export interface DurableObjectStateLike {
  readonly storage: DurableObjectStorageLike;
}

/** What a Durable Object stub answers (structural: a `Response`). */
export interface DurableObjectResponseLike {
  readonly status: number;
  text(): Promise<string>;
}

/** A Durable Object stub (structural). */
export interface DurableObjectStubLike {
  fetch(
    input: string,
    init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
  ): Promise<DurableObjectResponseLike>;
}

/** A Durable Object namespace binding (structural: `env.REPLAY`). */
export interface DurableObjectNamespaceLike<Id = unknown> {
  idFromName(name: string): Id;
  get(id: Id): DurableObjectStubLike;
}

/** Options of {@link DurableObjectReplayStore}. */
export interface DurableObjectReplayStoreOptions {
  /** The binding of the namespace of {@link DPoPReplayObject} (`env.REPLAY`). */
  namespace: DurableObjectNamespaceLike;
  /**
   * Objects the entries are spread over, by key (`idFromName('popkit-replay-' + shard)`).
   * Default 16. Every Worker sharing the namespace must use the same number, and it must not
   * change while proofs are live: a key would move to another object, and a proof accepted
   * before the change could be accepted again until it expires (change it, if ever, with a
   * pause of the proof lifetime, or under a new namespace).
   */
  shards?: number;
  /** Milliseconds to wait for the object before failing closed (503). Default 1,000. */
  timeout?: number;
}

/** The names of {@link DurableObjectReplayStoreOptions}, for the unknown-option check. @internal */
const DURABLE_OBJECT_STORE_OPTION_NAMES = {
  namespace: true,
  shards: true,
  timeout: true,
} as const satisfies OptionNames<DurableObjectReplayStoreOptions>;

/** The default number of shards. */
export const DEFAULT_SHARDS = 16;
const MAX_SHARDS = 1024;
/** The name of shard `n`'s object. @internal */
export const shardName = (n: number): string => `popkit-replay-${n}`;
/** Longest key accepted (the verifier's keys are 43 characters). */
const MAX_KEY = 512;
/** Latest expiry accepted, in ms (the index pads expiries to 15 digits). */
const MAX_EXPIRY = 1e15 - 1;
/** Storage key prefixes: the entry by key, and the index by expiry the alarm walks. */
const ENTRY = 'e:';
const INDEX = 'x:';
/** Index keys per alarm batch (Durable Object storage takes at most 128 keys per call). */
const BATCH = 128;
/** Batches per alarm run; more expired entries are left to an alarm set for now. */
const BATCHES_PER_ALARM = 4;
const ENDPOINT = 'https://popkit-replay.invalid/use';
const FIRST = '{"first":true}';
const REPLAY = '{"first":false}';

const indexKey = (expiresAt: number, key: string): string =>
  `${INDEX}${String(Math.ceil(expiresAt)).padStart(15, '0')}:${key}`;

/** FNV-1a over the key's UTF-16 code units: the shard of a key, stable across isolates. */
export function shardOf(key: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/**
 * The Durable Object holding one shard of the replay entries: export it from the Worker and
 * bind its namespace (see the README). It answers `POST /use` with `{"first":true}` on first
 * use and `{"first":false}` for a live entry; requests are handled one at a time (a queue in
 * the object, on top of its input gate), so the check and the write are atomic.
 *
 * **Lifetime**: an entry is live while `Date.now() < expiresAt`; an expired entry is treated
 * as absent when read. An alarm set at the earliest expiry deletes expired entries, at most
 * 128 index keys per batch and 4 batches per run (then an alarm for now takes the rest), and
 * sets itself at the next expiry, so storage holds only live entries (plus what expired since
 * the last alarm). Each live proof costs two storage keys: the entry (`e:` + key: its expiry)
 * and its index (`x:` + expiry + key).
 */
export class DPoPReplayObject {
  readonly #storage: DurableObjectStorageLike;
  #queue: Promise<unknown> = Promise.resolve();
  /** The alarm set (ms), null for none, undefined until read. */
  #alarmAt: number | null | undefined;

  constructor(state: DurableObjectStateLike, _env?: unknown) {
    this.#storage = state.storage;
  }

  /** `POST /use` with `{ key, expiresAt }`. */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== 'POST' || url.pathname !== '/use')
      return new Response('not found', { status: 404 });
    let key: unknown, expiresAt: unknown;
    try {
      ({ key, expiresAt } = (await request.json()) as { key?: unknown; expiresAt?: unknown });
    } catch {
      return new Response('bad request', { status: 400 });
    }
    if (
      typeof key !== 'string' ||
      key.length === 0 ||
      key.length > MAX_KEY ||
      typeof expiresAt !== 'number' ||
      !Number.isFinite(expiresAt) ||
      expiresAt < 0 ||
      expiresAt > MAX_EXPIRY
    ) {
      return new Response('bad request', { status: 400 });
    }
    try {
      const first = await this.#serial(() => this.#use(key, expiresAt));
      return new Response(first ? FIRST : REPLAY, {
        headers: { 'content-type': 'application/json' },
      });
    } catch {
      return new Response('storage error', { status: 500 });
    }
  }

  /** Deletes expired entries in bounded batches, then sets the alarm at the next expiry. */
  async alarm(): Promise<void> {
    await this.#serial(() => this.#expire());
  }

  #serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(step);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #use(key: string, expiresAt: number): Promise<boolean> {
    const storage = this.#storage;
    const entry = ENTRY + key;
    const existing = await storage.get(entry);
    const now = Date.now();
    if (existing !== undefined && (typeof existing !== 'number' || !Number.isFinite(existing)))
      throw new Error('corrupt entry');
    if (existing !== undefined && existing > now) return false;
    const writes: Record<string, unknown> = { [entry]: expiresAt, [indexKey(expiresAt, key)]: 1 };
    // (written together: one batch, so an entry never lacks its index)
    await storage.put(writes);
    if (existing !== undefined) await storage.delete([indexKey(existing, key)]);
    if (this.#alarmAt === undefined) this.#alarmAt = await storage.getAlarm();
    if (this.#alarmAt === null || expiresAt < this.#alarmAt) {
      await storage.setAlarm(expiresAt);
      this.#alarmAt = expiresAt;
    }
    return true;
  }

  async #expire(): Promise<void> {
    const storage = this.#storage;
    this.#alarmAt = null; // it fired
    const now = Date.now();
    let next: number | undefined;
    for (let batch = 0; batch < BATCHES_PER_ALARM && next === undefined; batch++) {
      const index = await storage.list({ prefix: INDEX, limit: BATCH });
      if (index.size === 0) break;
      const expired: string[] = [];
      for (const name of index.keys()) {
        const at = Number(name.slice(INDEX.length, INDEX.length + 15));
        if (at > now) {
          next = at;
          break;
        }
        expired.push(name);
      }
      if (expired.length === 0) break;
      const entries = expired.map((name) => ENTRY + name.slice(INDEX.length + 16));
      const values = await storage.get(entries);
      // an entry used again since holds a later expiry: only the expired ones go
      const gone = entries.filter((e) => {
        const v = values.get(e);
        return v !== undefined && !(typeof v === 'number' && v > now);
      });
      if (gone.length > 0) await storage.delete(gone);
      await storage.delete(expired);
      if (expired.length < index.size) break; // the rest is live: `next` is set
      if (index.size < BATCH) break; // nothing left
    }
    if (next === undefined) {
      const rest = await storage.list({ prefix: INDEX, limit: 1 });
      const first = rest.keys().next();
      if (!first.done)
        next = Math.max(now, Number(first.value.slice(INDEX.length, INDEX.length + 15)));
    }
    if (next !== undefined) {
      await storage.setAlarm(next);
      this.#alarmAt = next;
    }
  }
}

/**
 * A replay store in Durable Objects ({@link DPoPReplayObject}), shared by every isolate and
 * every Worker bound to the namespace: each key belongs to one of `shards` objects, which
 * records it in one round trip (`stub.fetch`) and answers whether it was new. Any error, an
 * answer later than `timeout`, or any answer other than the two expected ones throws
 * {@link ReplayStoreError} (`replay_store_error`): the verifier answers 503 with
 * `Retry-After`, never accepts.
 *
 * @example
 * ```ts
 * import { DurableObjectReplayStore } from '@popkit/dpop-verifier/durable-object';
 * // env.REPLAY: the namespace binding of DPoPReplayObject (wrangler.toml)
 * const replay = new DurableObjectReplayStore({ namespace: env.REPLAY });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class DurableObjectReplayStore implements ReplayStore {
  readonly #namespace: DurableObjectNamespaceLike;
  readonly #shards: number;
  readonly #timeout: number;

  constructor(options: DurableObjectReplayStoreOptions) {
    if (options === null || typeof options !== 'object')
      throw new DPoPConfigError('options', 'must be an object');
    rejectUnknownOptions(options, DURABLE_OBJECT_STORE_OPTION_NAMES, 'DurableObjectReplayStore');
    const { namespace, shards = DEFAULT_SHARDS, timeout = 1000 } = options;
    if (
      namespace === null ||
      typeof namespace !== 'object' ||
      typeof namespace.idFromName !== 'function' ||
      typeof namespace.get !== 'function'
    ) {
      throw new DPoPConfigError('namespace', 'must be a Durable Object namespace binding');
    }
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS)
      throw new DPoPConfigError('shards', `must be an integer from 1 to ${MAX_SHARDS}`);
    if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout))
      throw new DPoPConfigError('timeout', 'must be a positive number of ms');
    this.#namespace = namespace;
    this.#shards = shards;
    this.#timeout = timeout;
  }

  async useOnce(key: string, expiresAt: number): Promise<boolean> {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY)
      throw new ReplayStoreError('replay_store_error', 'the replay key is not a short string');
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))
      throw new ReplayStoreError('replay_store_error', 'expiresAt must be a number of ms');
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`no answer within ${this.#timeout} ms`));
      }, this.#timeout);
    });
    try {
      const answer = (async () => {
        const ns = this.#namespace;
        const stub = ns.get(ns.idFromName(shardName(shardOf(key, this.#shards))));
        const response = await stub.fetch(ENDPOINT, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ key, expiresAt }),
          signal: controller.signal,
        });
        const text = await response.text();
        if (response.status === 200 && text === FIRST) return true;
        if (response.status === 200 && text === REPLAY) return false;
        throw new Error(`unexpected answer: HTTP ${response.status}`);
      })();
      answer.catch(() => undefined); // (the deadline may win)
      return await Promise.race([answer, deadline]);
    } catch (e) {
      throw new ReplayStoreError(
        'replay_store_error',
        `the Durable Object replay store failed: ${e instanceof Error ? e.message : 'error'}`,
        { cause: e },
      );
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
