/**
 * A replay store shared by every server instance (RFC 9449 §11.1), in PostgreSQL: published as
 * `@popkit/dpop-verifier/postgres` (`src/postgres/index.ts`). Beside the Redis store.
 * @module
 */
import type { ReplayStore } from './types.ts';
import { ReplayStoreError } from './types.ts';
import { DPoPConfigError } from '../errors.ts';

/** A `pg` Pool or Client (structural): `query({ text, values, name })`. */
export interface PgLike {
  query(config: { text: string; values?: unknown[]; name?: string }): Promise<{ rows: unknown[] }>;
}

/** A postgres.js `sql` instance (structural): `sql.unsafe(text, params, { prepare })`. */
export interface PostgresJsLike {
  (...args: never[]): unknown;
  unsafe(text: string, params?: never[], options?: { prepare?: boolean }): PromiseLike<unknown>;
}

/** A `pg` Pool (structural): what the store needs to cancel a check that ran out of time. */
interface PgPoolLike extends PgLike {
  connect(): Promise<PgLike & { release(error?: unknown): void }>;
  readonly idleCount: number;
}

/** Options of {@link PostgresReplayStore}. */
export interface PostgresReplayStoreOptions {
  /** A `pg` Pool (or Client), or a postgres.js `sql` instance. */
  client: PgLike | PostgresJsLike;
  /**
   * Table name: lowercase letters, digits and `_`, optionally `schema.`-qualified, at most 50
   * characters per part (the store also uses `<table>_epoch` and `<table>_exp`). Default
   * `popkit_dpop_replay`.
   */
  table?: string;
  /**
   * `true` (default): `UNLOGGED` tables, no WAL per proof (cheaper writes, nothing to
   * replicate), but PostgreSQL empties them after a crash and they are empty on a promoted
   * replica. The store detects that (see {@link PostgresReplayStore}) and fails closed.
   * `false`: ordinary logged tables that survive crashes and replicate.
   */
  unlogged?: boolean;
  /**
   * `true` (default): the store creates its tables when they are missing
   * ({@link postgresReplaySchema}, at construction or on the next check). `false`: they must
   * exist (run {@link postgresReplaySchema} as a migration); the role then needs only
   * `SELECT, INSERT, UPDATE, DELETE` on them.
   */
  createTable?: boolean;
  /**
   * Milliseconds to wait for PostgreSQL per check before failing closed (503). Default 250.
   * A check that runs out of time is refused at once. With a `pg` Pool it is also cancelled on
   * the server: the store runs each check on a connection of its own and cancels its backend
   * (`pg_cancel_backend`, from a new connection; then closes that one), and a check still
   * waiting for a free connection is never sent. With postgres.js or a single `pg` Client, and
   * for a server that stops answering (paused, partitioned: no cancel reaches it), set
   * `statement_timeout` on the connections too, so the server gives up by itself (pg:
   * `new Pool({ statement_timeout: 250 })`; postgres.js:
   * `postgres(url, { connection: { statement_timeout: 250 } })`).
   */
  statementTimeoutMs?: number;
  /** Checks between two deletions of expired rows. Default 128. */
  cleanupEvery?: number;
  /** Most expired rows one deletion removes. Default 500. */
  cleanupBatch?: number;
  /**
   * Where the warning goes when the store finds that the table lost its entries (a crash of an
   * unlogged table, a failover, a `TRUNCATE`). Default `console.warn`. Carries no key or proof.
   */
  onWarning?: (message: string) => void;
}

/** The default table name. */
export const POSTGRES_REPLAY_TABLE = 'popkit_dpop_replay';

const PART = /^[a-z_][a-z0-9_]{0,49}$/;

function checkTable(table: unknown): string {
  if (typeof table !== 'string') throw new DPoPConfigError('table', 'must be a string');
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((p) => PART.test(p)))
    throw new DPoPConfigError(
      'table',
      'must be a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 50 characters), optionally schema-qualified',
    );
  return table;
}

/** `"schema"."name<suffix>"`, from a validated table name. */
function ident(table: string, suffix = ''): string {
  const parts = table.split('.');
  parts[parts.length - 1] += suffix;
  return parts.map((p) => `"${p}"`).join('.');
}

/**
 * The SQL that creates the store's tables, for a migration (with `createTable: false`): one
 * `DO` block, atomic and idempotent. `<table>` holds one row per live proof (its key and expiry
 * in ms since the epoch), with an index on the expiry for the bounded deletion of expired
 * rows; `<table>_epoch` holds one row naming the table's current life (see
 * {@link PostgresReplayStore}) and since when (the creation, by the database's clock). Only a
 * missing table is created: an existing one (emptied or not) is left alone.
 */
export function postgresReplaySchema(
  table: string = POSTGRES_REPLAY_TABLE,
  options: { unlogged?: boolean } = {},
): string {
  const t = checkTable(table);
  const kind = options.unlogged === false ? 'TABLE' : 'UNLOGGED TABLE';
  const bare = t.split('.').pop()!;
  return [
    'DO $popkit$ BEGIN',
    `  IF to_regclass('${ident(t)}') IS NULL THEN`,
    `    CREATE ${kind} ${ident(t)} (k text PRIMARY KEY, exp bigint NOT NULL);`,
    `    CREATE INDEX "${bare}_exp" ON ${ident(t)} (exp);`,
    `    CREATE ${kind} IF NOT EXISTS ${ident(t, '_epoch')} (id int PRIMARY KEY CHECK (id = 1), epoch text NOT NULL, since bigint NOT NULL);`,
    `    INSERT INTO ${ident(t, '_epoch')} (id, epoch, since) VALUES (1, md5(random()::text || clock_timestamp()::text), (extract(epoch FROM clock_timestamp()) * 1000)::bigint)`,
    `      ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, since = EXCLUDED.since;`,
    '  END IF;',
    'END $popkit$;',
  ].join('\n');
}

/** The migration for the default table (unlogged): `postgresReplaySchema()`. */
export const POSTGRES_REPLAY_SCHEMA: string = postgresReplaySchema();

/**
 * Runs one statement: its rows and the number of rows it changed. When `abandon` is set (the
 * check ran out of time and was already refused) and `client` is a `pg` Pool, the statement is
 * cancelled on the server: the check runs on a connection of its own, whose backend is
 * cancelled (`pg_cancel_backend`, from a new connection) and which is then closed; a check
 * still waiting for a connection is not sent at all. (A single `pg` Client, or postgres.js:
 * set `statement_timeout` on the connections, and the server gives up by itself.)
 */
type Run = (
  text: string,
  values: unknown[],
  name: string,
  abandon?: Abandon,
) => Promise<{ rows: unknown[]; count: number }>;

/**
 * A check's way out once it ran out of time (and was refused): `aborted` is set, then `cancel`
 * (set by the runner once the statement is on a connection) is called. Plain fields, not an
 * `AbortController`: one is made per check, and Node's cost several microseconds each.
 */
interface Abandon {
  aborted: boolean;
  cancel: (() => void) | undefined;
}

function resultOf(result: unknown): { rows: unknown[]; count: number } {
  // postgres.js: an array of rows with `count`; pg: { rows, rowCount }
  if (Array.isArray(result)) {
    const count = (result as { count?: unknown }).count;
    return { rows: result, count: typeof count === 'number' ? count : result.length };
  }
  const { rows, rowCount } = (result ?? {}) as { rows?: unknown; rowCount?: unknown };
  if (Array.isArray(rows))
    return { rows, count: typeof rowCount === 'number' ? rowCount : rows.length };
  throw new ReplayStoreError('replay_store_error', 'PostgreSQL returned no rows');
}

/** Tells a postgres.js `sql` (a function with `unsafe`) from a `pg` Pool or Client. */
function runner(client: unknown): Run {
  if (
    typeof client === 'function' &&
    typeof (client as { unsafe?: unknown }).unsafe === 'function'
  ) {
    const sql = client as PostgresJsLike;
    // (no cancellation here: postgres.js drops its cancel request's promise, and cancelling a
    // query that is still connecting disturbs its pool; set `statement_timeout` on the
    // connections instead, `postgres(url, { connection: { statement_timeout } })`)
    return async (text, values, name) =>
      resultOf(await sql.unsafe(text, values as never[], { prepare: name !== '' }));
  }
  if (
    client !== null &&
    typeof client === 'object' &&
    typeof (client as { query?: unknown }).query === 'function'
  ) {
    const pg = client as PgLike;
    const config = (text: string, values: unknown[], name: string) =>
      name === '' ? { text, values } : { text, values, name };
    const pool = client as Partial<PgPoolLike>;
    if (typeof pool.connect !== 'function' || typeof pool.idleCount !== 'number')
      return async (text, values, name) => resultOf(await pg.query(config(text, values, name)));
    // a Pool: the check runs on a connection of its own (as pool.query does), so that a check
    // that ran out of time can be cancelled on the server, by its backend's pid
    const pooled = pool as PgPoolLike;
    return async (text, values, name, abandon) => {
      if (abandon === undefined) return resultOf(await pg.query(config(text, values, name)));
      const connection = await pooled.connect();
      if (abandon.aborted) {
        connection.release(); // refused already: not sent
        throw new Error('the check ran out of time waiting for a connection');
      }
      const cancel = () => {
        // pg_cancel_backend on a connection of its own (opened like this one): the pool may be
        // exhausted by checks waiting like this one. It names the backend by pid; this
        // connection is closed after (below), so no later statement of ours runs there.
        const c = connection as unknown as {
          constructor: new (params: unknown) => PgLike & {
            connect(): Promise<unknown>;
            end(): Promise<unknown>;
            on(event: 'error', listener: () => void): unknown;
          };
          connectionParameters?: unknown;
          processID?: unknown;
        };
        if (c.connectionParameters === undefined || typeof c.processID !== 'number') return;
        const pid = c.processID;
        try {
          const other = new c.constructor(c.connectionParameters);
          other.on('error', () => undefined); // (a server that went away: nothing to cancel)
          other
            .connect()
            .then(() => other.query({ text: 'SELECT pg_cancel_backend($1)', values: [pid] }))
            .catch(() => undefined)
            .finally(() => other.end().catch(() => undefined));
        } catch {
          // (not a pg Client after all: the statement runs to its end)
        }
      };
      abandon.cancel = cancel;
      let failed: unknown;
      try {
        return resultOf(await connection.query(config(text, values, name)));
      } catch (error) {
        failed = error;
        throw error;
      } finally {
        abandon.cancel = undefined;
        // a cancelled check's connection is closed, not reused: a cancel arriving late can then
        // hit no other statement of ours (it names this backend, which is gone)
        connection.release(abandon.aborted ? true : failed);
      }
    };
  }
  throw new DPoPConfigError('client', 'must be a pg Pool or Client, or a postgres.js sql instance');
}

/**
 * A prepared statement's name, from its text (FNV-1a, 32 bits): the same statement gets the
 * same name on every connection, and stores on other tables sharing a pool get other names.
 */
function statementName(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return `popkit_replay_${(h >>> 0).toString(36)}_${text.length}`;
}

/** SQLSTATE of a missing table. */
const UNDEFINED_TABLE = '42P01';

/** SQLSTATEs of a `CREATE ... IF NOT EXISTS` that lost a race with another instance's. */
const CREATE_RACE = new Set(['23505', '42P07', '42710']);

/**
 * A replay store in PostgreSQL, shared by every instance: one statement per proof,
 * `INSERT ... ON CONFLICT (k) DO UPDATE SET exp = EXCLUDED.exp WHERE exp <= now RETURNING 1`,
 * which is atomic: a row back means first use (a new key, or an expired row taken over), no row
 * means a live entry (a replay). Two instances receiving the same proof at once accept it
 * exactly once. Works with a `pg` Pool or Client and with a postgres.js `sql` instance (both
 * optional peer dependencies). If PostgreSQL is down, slow (`statementTimeoutMs`) or answers
 * an error or anything unexpected, `useOnce` throws {@link ReplayStoreError} and the request is
 * refused with 503: never accepted.
 *
 * **Bounded table**: an entry lives until the `expiresAt` the verifier computed (at least a
 * second). Every `cleanupEvery` checks the store deletes up to `cleanupBatch` expired rows (an
 * index range on `exp`, in the background: it never delays a check), more at once while it
 * finds full batches, so the table holds about the live entries. An expired row is also
 * reused in place when its key comes again.
 *
 * **Unlogged or logged** (`unlogged`, default `true`): an unlogged table writes no WAL per
 * proof, but PostgreSQL empties it after a crash (and it is empty on a promoted replica):
 * every proof accepted in the last proof lifetime could then be accepted again. The store
 * fails closed instead, through `since` and `epoch`: the table has a one-row companion,
 * `<table>_epoch` (as unlogged as the table, so it empties with it), naming the table's
 * current life and since when it remembers everything (its creation, or the last time it was
 * found emptied: a table dropped and created again starts a new life too). Each check reads it in the same statement. When it is gone or has changed, the
 * store starts (or joins) a new life, `since` = now and a new `epoch`, and refuses that check
 * with 503; from then on the verifier refuses proofs issued before `since`
 * (`iat_before_restart`) and nonces issued for the old epoch (`use_dpop_nonce`: the client
 * retries with a fresh one). So a crash costs a few refused requests for one proof lifetime,
 * never a replay. A logged table (`unlogged: false`) survives crashes and replicates, at the
 * price of WAL per proof (and the epoch row is then durable too). To empty the table by hand,
 * delete the `<table>_epoch` row as well (or `TRUNCATE` both), so the store notices. Until its
 * first answer a store reports its own start as `since` (it cannot know yet what the table
 * holds), then the table's; every instance sharing the table reports the same `epoch`, so
 * nonces issued by one are valid at the others.
 *
 * **Sizing**: one row per live proof, living at most `maxAge + clockTolerance` (or the nonce
 * lifetime): measured 183 bytes per row with its two index entries (85 of heap, 98 of index,
 * for 43-byte keys). Plan (peak proofs per second) x (that lifetime) x 190 bytes, plus dead
 * tuples until autovacuum reclaims them.
 *
 * **Clock**: expiries are compared with this process's clock (as `expiresAt` is); keep the
 * instances' clocks in sync (NTP), as for the verifier itself.
 *
 * `stats()` is not implemented: counting rows is not cheap; watch the table's size instead.
 * There is no per-account fairness (`scope` is ignored, unlike the memory store): the table
 * grows with the traffic, so size the database for the peak, as for Redis.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { PostgresReplayStore } from '@popkit/dpop-verifier/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, statement_timeout: 250 });
 * const replay = new PostgresReplayStore({ client: pool });
 * await replay.ready(); // optional: tables created, the table's epoch known
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class PostgresReplayStore implements ReplayStore {
  readonly #run: Run;
  readonly #table: string;
  readonly #unlogged: boolean;
  readonly #createTable: boolean;
  readonly #timeout: number;
  readonly #cleanupEvery: number;
  readonly #cleanupBatch: number;
  readonly #onWarning: (message: string) => void;
  readonly #check: string;
  readonly #learn: string;
  readonly #clean: string;
  readonly #names: { check: string; learn: string; clean: string };
  readonly #startedAt = Date.now();
  /** The table life this store answers for; a placeholder of its own until it learned one. */
  #epoch: string;
  readonly #placeholder: string;
  #since: number;
  /** Whether this store found the table missing and created it (nothing was recorded before). */
  #created = false;
  #ready: Promise<void> | undefined;
  /** `#ready` once it resolved: a check then skips waiting for it (no race, no microtask). */
  #resolved: Promise<void> | undefined;
  #relearn: Promise<void> | undefined;
  #calls = 0;
  #cleaning = false;

  constructor(options: PostgresReplayStoreOptions) {
    if (options === null || typeof options !== 'object')
      throw new DPoPConfigError('options', 'must be an object with a client');
    const {
      client,
      table = POSTGRES_REPLAY_TABLE,
      unlogged = true,
      createTable = true,
      statementTimeoutMs = 250,
      cleanupEvery = 128,
      cleanupBatch = 500,
      onWarning = (message: string) => console.warn(message),
    } = options;
    this.#table = checkTable(table);
    if (typeof unlogged !== 'boolean') throw new DPoPConfigError('unlogged', 'must be a boolean');
    if (typeof createTable !== 'boolean')
      throw new DPoPConfigError('createTable', 'must be a boolean');
    if (!Number.isFinite(statementTimeoutMs) || statementTimeoutMs <= 0)
      throw new DPoPConfigError('statementTimeoutMs', 'must be a positive number of ms');
    if (!Number.isInteger(cleanupEvery) || cleanupEvery < 1 || cleanupEvery > 1_000_000)
      throw new DPoPConfigError('cleanupEvery', 'must be an integer from 1 to 1,000,000');
    if (!Number.isInteger(cleanupBatch) || cleanupBatch < 1 || cleanupBatch > 100_000)
      throw new DPoPConfigError('cleanupBatch', 'must be an integer from 1 to 100,000');
    if (typeof onWarning !== 'function')
      throw new DPoPConfigError('onWarning', 'must be a function');
    this.#unlogged = unlogged;
    this.#createTable = createTable;
    this.#timeout = statementTimeoutMs;
    this.#cleanupEvery = cleanupEvery;
    this.#cleanupBatch = cleanupBatch;
    this.#onWarning = onWarning;
    this.#run = runner(client);

    const t = ident(this.#table);
    const e = ident(this.#table, '_epoch');
    // One statement, one snapshot: the insert-if-absent (taking over an expired row) and the
    // table's life. A row with `fresh` 1 is first use; 0 a replay.
    this.#check =
      `WITH ins AS (INSERT INTO ${t} AS t (k, exp) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET exp = EXCLUDED.exp WHERE t.exp <= $3 RETURNING 1) ` +
      `SELECT (SELECT count(*) FROM ins)::int AS fresh, (SELECT epoch FROM ${e} WHERE id = 1) AS epoch`;
    // The table's life, started now if it has none (new, or emptied by a crash). In one
    // snapshot: exactly one row, unless another instance started one at the same moment.
    this.#learn =
      `WITH mk AS (INSERT INTO ${e} (id, epoch, since) VALUES (1, md5(random()::text || clock_timestamp()::text), $1) ON CONFLICT (id) DO NOTHING RETURNING epoch, since) ` +
      `SELECT epoch, since::text AS since, true AS started FROM mk UNION ALL SELECT epoch, since::text AS since, false AS started FROM ${e} WHERE id = 1`;
    this.#clean = `DELETE FROM ${t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${t} WHERE exp < $1 ORDER BY exp LIMIT ${this.#cleanupBatch})) AND exp < $1`;
    this.#names = {
      check: statementName(this.#check),
      learn: statementName(this.#learn),
      clean: statementName(this.#clean),
    };
    const words = crypto.getRandomValues(new Uint32Array(2));
    this.#placeholder = `local-${words[0]!.toString(36)}${words[1]!.toString(36)}`;
    this.#epoch = this.#placeholder;
    this.#since = this.#startedAt;
    // learn the table's life now, so that the first nonces issued are bound to it (a failure
    // here is retried by the first check)
    this.#ensureReady().catch(() => undefined);
  }

  /**
   * Resolves once the tables exist (unless `createTable: false`) and the store knows the table's
   * life (`epoch`, `since`); rejects with {@link ReplayStoreError} when that takes more than
   * `timeoutMs` (default: `statementTimeoutMs`, at least 5 s: creating tables can take a while).
   * Optional: the store starts this at construction and the first check waits for it. Await it
   * at start-up so that no nonce is issued for the store's placeholder epoch (refused once the
   * epoch is known: one client retry), and no check of a brand-new table, whose life started
   * after this store did, is refused (503) for being asked before the store knew that life.
   */
  async ready(timeoutMs: number = Math.max(this.#timeout, 5000)): Promise<void> {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new ReplayStoreError('replay_store_error', 'timeoutMs must be a positive number of ms');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ReplayStoreError('replay_store_error', 'PostgreSQL did not answer in time')),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#ensureReady(), timeout]);
    } catch (cause) {
      if (cause instanceof ReplayStoreError) throw cause;
      throw new ReplayStoreError(
        'replay_store_error',
        'PostgreSQL could not prepare the replay table',
        {
          cause,
        },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Since when (ms since the epoch) the table remembers every proof: when its current life
   * started (created, or emptied by a crash). Until the store's first answer, its own start.
   * The verifier refuses proofs whose `iat` is older.
   */
  get since(): number {
    return this.#since;
  }

  /**
   * The table's current life, shared by every instance using it (a placeholder of this store's
   * own until its first answer): the verifier binds its nonces to it, so nonces issued before
   * the table lost its entries are refused with `use_dpop_nonce` and a fresh one.
   */
  get epoch(): string {
    return this.#epoch;
  }

  /**
   * Records `key` if it is not live: `true` on first use, `false` for a replay. Throws
   * {@link ReplayStoreError} (`replay_store_error`) when PostgreSQL cannot answer in time,
   * answers an error or something unexpected, or the table lost its entries.
   */
  async useOnce(key: string, expiresAt: number): Promise<boolean> {
    if (typeof key !== 'string' || key.length === 0 || key.length > 512)
      throw new ReplayStoreError('replay_store_error', 'key must be a string of 1 to 512 chars');
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))
      throw new ReplayStoreError('replay_store_error', 'expiresAt must be a finite number of ms');
    // what the verifier checked this proof against (its `since` and nonce epoch)
    const known = this.#epoch;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let late: ReplayStoreError | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = new ReplayStoreError('replay_store_error', 'PostgreSQL did not answer in time');
        reject(late);
      }, this.#timeout);
    });
    let rows: unknown[];
    const abandon: Abandon = { aborted: false, cancel: undefined };
    try {
      if (this.#ready === undefined || this.#ready !== this.#resolved)
        await Promise.race([this.#ensureReady(), timeout]);
      const now = Date.now();
      // at least a second: a proof at the very edge of its window is still recorded, so
      // concurrent copies of it are refused
      const exp = Math.max(Math.ceil(expiresAt), now + 1000);
      ({ rows } = await Promise.race([
        this.#run(this.#check, [key, exp, now], this.#names.check, abandon),
        timeout,
      ]));
    } catch (cause) {
      // out of time: the server abandons the statement too (see `Run`)
      if (late !== undefined && cause === late) {
        abandon.aborted = true;
        abandon.cancel?.();
      }
      if (cause instanceof ReplayStoreError) throw cause;
      // the table is gone (dropped): the next check creates it again, in a new life
      if ((cause as { code?: unknown } | null)?.code === UNDEFINED_TABLE && this.#createTable)
        this.#ready = undefined;
      throw new ReplayStoreError('replay_store_error', 'PostgreSQL refused the replay check', {
        cause,
      });
    } finally {
      clearTimeout(timer);
    }
    if (++this.#calls % this.#cleanupEvery === 0) this.#cleanup();
    const row = rows.length === 1 ? (rows[0] as { fresh?: unknown; epoch?: unknown }) : undefined;
    const fresh = row?.fresh;
    const epoch = row?.epoch;
    if (
      row === undefined ||
      (fresh !== 0 && fresh !== 1) ||
      (epoch !== null && (typeof epoch !== 'string' || epoch.length === 0))
    ) {
      throw new ReplayStoreError(
        'replay_store_error',
        'PostgreSQL answered the replay check with an unexpected result',
      );
    }
    if (epoch !== this.#epoch) {
      // The table lost its entries (or another instance found that out first): whatever it
      // answered may be a replay it forgot. Start (or join) the new life, refuse this one.
      this.#startRelearn();
      throw new ReplayStoreError(
        'replay_store_error',
        'the PostgreSQL replay table lost its entries (a crash of an unlogged table, a failover or a TRUNCATE); proofs from before now are refused',
      );
    }
    // a check that started before the store learned the table's life was checked against the
    // store's own start: good enough only if the table remembers from before then
    if (
      known !== epoch &&
      !(known === this.#placeholder && (this.#created || this.#since <= this.#startedAt))
    )
      throw new ReplayStoreError(
        'replay_store_error',
        'the PostgreSQL replay table started a new life during this check',
      );
    return fresh === 1;
  }

  /** Creates the tables (unless `createTable: false`) and learns the table's life, once. */
  #ensureReady(): Promise<void> {
    if (this.#ready === undefined) {
      const ready = (async () => {
        if (this.#createTable) await this.#createTables();
        await this.#learnEpoch();
      })();
      // when it could not be done, the next check tries again
      ready.then(
        () => {
          if (this.#ready === ready) this.#resolved = ready;
        },
        () => {
          if (this.#ready === ready) this.#ready = undefined;
        },
      );
      this.#ready = ready;
    }
    return this.#ready;
  }

  async #createTables(): Promise<void> {
    const { rows } = await this.#run(
      'SELECT to_regclass($1) IS NULL AS missing',
      [ident(this.#table)],
      'popkit_replay_probe',
    );
    const missing = (rows[0] as { missing?: unknown } | undefined)?.missing === true;
    const schema = postgresReplaySchema(this.#table, { unlogged: this.#unlogged });
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#run(schema, [], '');
        // found missing, then created (by this store or one racing it): a table with no past
        if (missing) this.#created = true;
        return;
      } catch (error) {
        // two instances creating the same table at once: the loser fails, then finds it
        const code = (error as { code?: unknown } | null)?.code;
        if (attempt > 2 || typeof code !== 'string' || !CREATE_RACE.has(code)) throw error;
      }
    }
  }

  /** Reads (or starts) the table's life and adopts it. */
  async #learnEpoch(): Promise<void> {
    const { rows } = await this.#run(this.#learn, [Date.now()], this.#names.learn);
    const row =
      rows.length === 1
        ? (rows[0] as { epoch?: unknown; since?: unknown; started?: unknown })
        : undefined;
    const since = typeof row?.since === 'string' ? Number(row.since) : NaN;
    if (typeof row?.epoch !== 'string' || row.epoch.length === 0 || !Number.isSafeInteger(since))
      throw new ReplayStoreError(
        'replay_store_error',
        'PostgreSQL answered with no replay table epoch',
      );
    if (row.epoch === this.#epoch) return;
    const wasKnown = this.#epoch !== this.#placeholder;
    this.#epoch = row.epoch;
    this.#since = since;
    // a life this store saw end, or one it had to start for a table that had lost its row
    if (wasKnown || row.started === true) {
      try {
        this.#onWarning(
          'popkit: the PostgreSQL replay table lost its entries (a crash emptied the unlogged table, a failover or a TRUNCATE); DPoP proofs issued before now are refused for one proof lifetime.',
        );
      } catch {
        // the warning is advice; a throwing logger changes nothing
      }
    }
  }

  #startRelearn(): void {
    if (this.#relearn !== undefined) return;
    const relearn = this.#learnEpoch().then(
      () => undefined,
      () => undefined,
    );
    this.#relearn = relearn;
    void relearn.finally(() => {
      if (this.#relearn === relearn) this.#relearn = undefined;
    });
  }

  /** Deletes a batch of expired rows, in the background; again at once while batches are full. */
  #cleanup(): void {
    if (this.#cleaning) return;
    this.#cleaning = true;
    const round = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        const { count } = await this.#run(this.#clean, [Date.now()], this.#names.clean);
        if (count < this.#cleanupBatch) return;
      }
    };
    round().then(
      () => (this.#cleaning = false),
      () => (this.#cleaning = false),
    );
  }
}
