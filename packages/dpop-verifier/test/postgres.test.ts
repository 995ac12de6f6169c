// PostgresReplayStore beyond the shared contract (replay-contract-postgres.test.ts): a crash of
// the unlogged table, logged tables, migrations, bounded cleanup, locks, option validation.
import { createProof, generateKeyPair } from '@popkit/dpop-client';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresServer } from '../../../test-support/postgres.ts';
import { requirePostgres, startPostgres } from '../../../test-support/postgres.ts';
import {
  POSTGRES_REPLAY_SCHEMA,
  PostgresReplayStore,
  postgresReplaySchema,
} from '../src/postgres/index.ts';
import {
  DPoPConfigError,
  DPoPError,
  ReplayStoreError,
  createDPoPAuth,
  createNonceIssuer,
  createProofVerifier,
} from '../src/index.ts';
import { AUDIENCE, ISSUER, URL_, clientKey, testIssuer } from './helpers.ts';

const available = requirePostgres();
const GET = { method: 'GET', url: URL_ } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function failure(p: Promise<unknown>): Promise<DPoPError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(DPoPError);
  return e as DPoPError;
}

/** Retries `attempt` while it fails with 503 (the store's first answers after an outage). */
async function past503<T>(attempt: () => Promise<T>): Promise<T | DPoPError> {
  let refused503 = 0;
  for (let i = 0; i < 100; i++) {
    const outcome = await attempt().catch((e: unknown) => e as DPoPError);
    if (!(outcome instanceof DPoPError) || outcome.status !== 503) return outcome;
    refused503++;
    await sleep(100);
  }
  throw new Error(`still 503 after ${refused503} attempts`);
}

describe.skipIf(!available)('PostgresReplayStore against a real PostgreSQL', () => {
  let server: PostgresServer;
  const pools: pg.Pool[] = [];
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    try {
      // (a pool whose client a failed test still holds would wait forever)
      await Promise.race([Promise.all(pools.map((p) => p.end())), sleep(3000)]);
    } finally {
      await server?.stop();
    }
  });
  const pool = () => {
    const p = new pg.Pool({ connectionString: server.url, max: 4, connectionTimeoutMillis: 1000 });
    p.on('error', () => {}); // outages are part of these tests
    pools.push(p);
    return p;
  };
  const count = async (p: pg.Pool, table: string) =>
    Number((await p.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);

  it('a crash empties the unlogged table; the store notices and a replay of a proof from before is refused, never accepted', async () => {
    const admin = pool();
    const warnings: string[] = [];
    const store = new PostgresReplayStore({
      client: pool(),
      table: 'crash_unlogged',
      onWarning: (m) => warnings.push(m),
    });
    const secret = 'postgres-crash-test-nonce-secret-0123456789';
    await store.ready(); // its table's life starts before the first proof below
    const verify = createProofVerifier({ replay: store });
    const withNonces = createProofVerifier({
      replay: store,
      nonces: createNonceIssuer({ secret }),
    });
    const key = await generateKeyPair();
    const captured = await createProof(key, GET);
    await verify(captured, GET);
    // a new table remembers everything since its creation, a moment ago
    const created = store.since;
    expect(created).toBeGreaterThan(Date.now() - 10_000);
    expect(created).toBeLessThanOrEqual(Date.now());
    const kinds = await admin.query(
      `SELECT DISTINCT relpersistence FROM pg_class WHERE relname LIKE 'crash_unlogged%'`,
    );
    expect(kinds.rows).toEqual([{ relpersistence: 'u' }]); // the table, its indexes, the epoch row
    const before = store.epoch;
    // a nonce of the table's life before the crash, and a proof carrying it
    const nonce = (await failure(withNonces(await createProof(key, GET), GET))).headers[
      'DPoP-Nonce'
    ]!;
    const noncedProof = await createProof(key, { ...GET, nonce });
    await withNonces(noncedProof, GET);
    expect((await failure(verify(captured, GET))).reason).toBe('replay');
    await sleep(1100); // the crash comes a second later

    await server.kill();
    await server.restart();
    // the crash really emptied the table (what a store without the epoch row would trust)
    expect(await count(admin, 'crash_unlogged')).toBe(0);

    const replayed = await past503(() => verify(captured, GET));
    expect(replayed).toBeInstanceOf(DPoPError);
    expect([(replayed as DPoPError).code, (replayed as DPoPError).reason]).toEqual([
      'invalid_dpop_proof',
      'iat_before_restart',
    ]);
    expect(store.epoch).not.toBe(before);
    expect(store.since).toBeGreaterThan(created + 1000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/lost its entries/);
    // the proof with the old life's nonce: refused with a fresh nonce, never accepted
    const stale = await failure(withNonces(noncedProof, GET));
    expect([stale.code, stale.reason]).toEqual(['use_dpop_nonce', 'nonce_invalid']);
    expect(stale.headers['DPoP-Nonce']).not.toBe(nonce);
    // new proofs (one per request) are accepted; a second instance joins the new life
    await verify(await createProof(key, GET), GET);
    const joining = new PostgresReplayStore({ client: pool(), table: 'crash_unlogged' });
    const proof = await createProof(key, GET);
    await createProofVerifier({ replay: joining })(proof, GET);
    expect(joining.epoch).toBe(store.epoch);
    expect(joining.since).toBe(store.since);
    expect((await failure(verify(proof, GET))).reason).toBe('replay');
  });

  it('a logged table (unlogged: false) keeps its entries through a crash: the replay is refused as a replay', async () => {
    const admin = pool();
    const store = new PostgresReplayStore({
      client: pool(),
      table: 'crash_logged',
      unlogged: false,
    });
    await store.ready();
    const verify = createProofVerifier({ replay: store });
    const key = await generateKeyPair();
    const captured = await createProof(key, GET);
    await verify(captured, GET);
    const persistence = await admin.query(
      `SELECT relname, relpersistence FROM pg_class WHERE relname LIKE 'crash_logged%' ORDER BY relname`,
    );
    expect(persistence.rows).toEqual([
      { relname: 'crash_logged', relpersistence: 'p' },
      { relname: 'crash_logged_epoch', relpersistence: 'p' },
      { relname: 'crash_logged_epoch_pkey', relpersistence: 'p' },
      { relname: 'crash_logged_exp', relpersistence: 'p' },
      { relname: 'crash_logged_pkey', relpersistence: 'p' },
    ]);
    const [epoch, since] = [store.epoch, store.since];
    await server.kill();
    await server.restart();
    expect(await count(admin, 'crash_logged')).toBe(1);
    const replayed = await past503(() => verify(captured, GET));
    expect((replayed as DPoPError).reason).toBe('replay');
    expect([store.epoch, store.since]).toEqual([epoch, since]);
  });

  it('a dropped table is created again in a new life: a proof accepted before is refused after', async () => {
    const admin = pool();
    const warnings: string[] = [];
    const store = new PostgresReplayStore({
      client: pool(),
      table: 'dropped',
      onWarning: (m) => warnings.push(m),
    });
    await store.ready();
    const verify = createProofVerifier({ replay: store });
    const key = await generateKeyPair();
    const captured = await createProof(key, GET);
    await verify(captured, GET);
    const before = [store.epoch, store.since] as const;
    await sleep(1100);
    await admin.query('DROP TABLE dropped, dropped_epoch');
    const replayed = await past503(() => verify(captured, GET));
    expect([(replayed as DPoPError).code, (replayed as DPoPError).reason]).toEqual([
      'invalid_dpop_proof',
      'iat_before_restart',
    ]);
    expect(store.epoch).not.toBe(before[0]);
    expect(store.since).toBeGreaterThan(before[1] + 1000);
    expect(warnings).toHaveLength(1);
    await verify(await createProof(key, GET), GET);
  });

  it('createTable: false needs the migration; postgresReplaySchema is idempotent and schema-qualified', async () => {
    const admin = pool();
    const store = new PostgresReplayStore({
      client: pool(),
      table: 'migrated.replay',
      createTable: false,
    });
    const missing = await store.useOnce('k'.repeat(43), Date.now() + 5000).catch((e) => e);
    expect(missing).toBeInstanceOf(ReplayStoreError);
    expect((missing as ReplayStoreError).reason).toBe('replay_store_error');
    await admin.query('CREATE SCHEMA migrated');
    const migration = postgresReplaySchema('migrated.replay', { unlogged: false });
    await admin.query(migration);
    await admin.query(migration); // again: nothing changes
    // the store started before its table existed: the check it was asked before it learned the
    // table's life fails closed once (it cannot tell what was recorded before), then it works
    expect(await store.useOnce('k'.repeat(43), Date.now() + 5000).catch((e) => e)).toBeInstanceOf(
      ReplayStoreError,
    );
    expect(await store.useOnce('k'.repeat(43), Date.now() + 5000)).toBe(false); // recorded
    const after = new PostgresReplayStore({
      client: pool(),
      table: 'migrated.replay',
      createTable: false,
    });
    expect(await after.useOnce('m'.repeat(43), Date.now() + 5000)).toBe(true);
    expect(await store.useOnce('m'.repeat(43), Date.now() + 5000)).toBe(false);
    expect(after.since).toBe(store.since);
    expect(after.since).toBeLessThanOrEqual(Date.now());
    const kinds = await admin.query(
      `SELECT c.relname, c.relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'migrated' ORDER BY 1`,
    );
    expect(kinds.rows.map((r: { relpersistence: string }) => r.relpersistence)).toEqual([
      'p',
      'p',
      'p',
      'p',
      'p',
    ]); // replay, its key index, _epoch, its key index, the expiry index
    // the default migration names the default table, unlogged
    expect(POSTGRES_REPLAY_SCHEMA).toMatch(/CREATE UNLOGGED TABLE "popkit_dpop_replay"/);
    await admin.query(POSTGRES_REPLAY_SCHEMA);
    const defaults = new PostgresReplayStore({ client: pool(), createTable: false });
    expect(await defaults.useOnce('d'.repeat(43), Date.now() + 5000)).toBe(true);
  });

  for (const driver of ['pg', 'postgres.js'] as const)
    it(`deletes expired rows in bounded batches and never a live one (${driver})`, async () => {
      const admin = pool();
      const table = `cleanup_${driver === 'pg' ? 'pg' : 'pgjs'}`;
      const sql = postgres(server.url, { max: 4, onnotice: () => {} });
      const client = driver === 'pg' ? pool() : sql;
      // 650 checks at once queue on 4 connections: a generous timeout
      const options = { client, table, statementTimeoutMs: 5000 };
      // the filler never cleans (so the count below is exact); the store cleans every 50 checks
      const filler = new PostgresReplayStore({ ...options, cleanupEvery: 1_000_000 });
      const store = new PostgresReplayStore({ ...options, cleanupEvery: 50, cleanupBatch: 100 });
      await Promise.all([filler.ready(), store.ready()]);
      const soon = Date.now() + 1000;
      const later = Date.now() + 60_000;
      const expiring = Array.from({ length: 450 }, (_, i) => `exp-${i}`.padEnd(43, '.'));
      const live = Array.from({ length: 200 }, (_, i) => `live-${i}`.padEnd(43, '.'));
      await Promise.all(expiring.map((k) => filler.useOnce(k, soon)));
      await Promise.all(live.map((k) => filler.useOnce(k, later)));
      expect(await count(admin, table)).toBe(650);
      await sleep(Math.max(0, soon - Date.now()) + 100);
      // the checks go on (the live keys again: replays): a cleanup runs every 50 calls, and goes on
      // while it finds full batches of 100
      for (const k of live) expect(await store.useOnce(k, later)).toBe(false);
      let rows = Infinity;
      for (let i = 0; i < 50 && rows > 200; i++) {
        await sleep(20);
        rows = await count(admin, table);
      }
      expect(rows).toBe(200);
      const left = await admin.query(`SELECT k FROM ${table} ORDER BY k`);
      expect(left.rows.map((r: { k: string }) => r.k)).toEqual([...live].sort());
      await sql.end({ timeout: 1 });
    });

  it('a check blocked by a lock fails closed within statementTimeoutMs; the error names no key', async () => {
    const store = new PostgresReplayStore({
      client: pool(),
      table: 'locks',
      statementTimeoutMs: 300,
    });
    await store.ready();
    const key = 'secret-looking-key'.padEnd(43, 'z');
    expect(await store.useOnce('warm'.padEnd(43, 'z'), Date.now() + 5000)).toBe(true);
    const holder = await pool().connect();
    try {
      await holder.query('BEGIN');
      await holder.query('INSERT INTO locks (k, exp) VALUES ($1, $2)', [key, Date.now() + 60_000]);
      const started = Date.now();
      const blocked = await store.useOnce(key, Date.now() + 5000).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(blocked).toBeInstanceOf(ReplayStoreError);
      expect((blocked as ReplayStoreError).reason).toBe('replay_store_error');
      expect((blocked as Error).message).toMatch(/did not answer in time/);
      expect((blocked as Error).message).not.toContain('secret-looking');
      await holder.query('COMMIT');
    } finally {
      holder.release(true); // closed: a failed assertion must not leave its transaction open
    }
    // the entry the other transaction committed is live: a replay
    expect(await store.useOnce(key, Date.now() + 5000)).toBe(false);
  });

  it('a slow server (the table locked): createDPoPAuth answers 503 replay_store_error within statementTimeoutMs, and the server abandons the check (pg Pool: cancelled; postgres.js: statement_timeout)', async () => {
    const as = await testIssuer();
    // postgres.js: the server-side statement_timeout on its connections (the store cancels only
    // a pg Pool's checks itself)
    const sql = postgres(server.url, {
      max: 4,
      onnotice: () => {},
      connect_timeout: 2,
      connection: { statement_timeout: 300 },
    });
    const clients = [
      { via: 'pg', client: pool(), table: 'slow_pg' },
      { via: 'postgres.js', client: sql, table: 'slow_pgjs' },
    ] as const;
    const watcher = pool();
    const k = await clientKey();
    const token = await as.mint({ cnf: { jkt: k.jkt } });
    try {
      for (const { via, client, table } of clients) {
        const replay = new PostgresReplayStore({ client, table, statementTimeoutMs: 300 });
        await replay.ready();
        const auth = createDPoPAuth({
          accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: as.jwks as never },
          replay,
          allowedHosts: ['api.example.com'],
        });
        const request = async () => ({
          method: 'GET',
          url: URL_,
          headers: new Headers({
            authorization: `DPoP ${token}`,
            dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
          }),
        });
        // another session holds the table: every check waits for it (a slow server)
        const holder = await watcher.connect();
        try {
          await holder.query('BEGIN');
          await holder.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
          const started = Date.now();
          const refusals = await Promise.all(
            Array.from({ length: 3 }, async () => failure(auth.verify(await request()))),
          );
          expect(Date.now() - started, via).toBeLessThan(2000);
          for (const e of refusals) {
            expect(e.status, via).toBe(503);
            expect(e.reason, via).toBe('replay_store_error');
            expect(e.headers['Retry-After'], via).toBeDefined();
          }
          // the server gave up the checks too (cancelled), though the lock is still held
          let waiting = Infinity;
          for (let i = 0; i < 40 && waiting > 0; i++) {
            await sleep(100);
            const { rows } = await watcher.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'WITH ins AS%' AND query LIKE '%${table}%'`,
            );
            waiting = rows[0].n as number;
          }
          expect(waiting, `${via}: checks still waiting on the server`).toBe(0);
        } finally {
          await holder.query('ROLLBACK').catch(() => undefined);
          holder.release(true);
        }
        // and once the lock is gone, the store answers again
        const ok = await past503(async () => auth.verify(await request()));
        expect(ok, via).not.toBeInstanceOf(DPoPError);
      }
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('ready(): the instances sharing a table agree on its epoch, so a nonce from one is valid at the other', async () => {
    const secret = 'postgres-ready-test-nonce-secret-0123456789';
    const [one, two] = [0, 1].map(
      () => new PostgresReplayStore({ client: pool(), table: 'ready_shared' }),
    );
    await Promise.all([one!.ready(), two!.ready()]);
    expect(one!.epoch).toBe(two!.epoch);
    expect(one!.epoch).not.toMatch(/^local-/);
    expect(one!.since).toBe(two!.since);
    const [a, b] = [one!, two!].map((replay) =>
      createProofVerifier({ replay, nonces: createNonceIssuer({ secret }) }),
    );
    const key = await generateKeyPair();
    const nonce = (await failure(a!(await createProof(key, GET), GET))).headers['DPoP-Nonce']!;
    // the nonce instance a issued is accepted by instance b, once
    const proof = await createProof(key, { ...GET, nonce });
    await b!(proof, GET);
    expect((await failure(a!(proof, GET))).reason).toBe('replay');
    // and ready() fails closed, typed, when PostgreSQL cannot be reached
    const nowhere = new pg.Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 100 });
    nowhere.on('error', () => {});
    const store = new PostgresReplayStore({ client: nowhere, statementTimeoutMs: 300 });
    const started = Date.now();
    const e = await store.ready(300).catch((x: unknown) => x);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(e).toBeInstanceOf(ReplayStoreError);
    expect((e as ReplayStoreError).reason).toBe('replay_store_error');
    expect(store.epoch).toMatch(/^local-/);
    await nowhere.end();
  });

  it('stores on different tables share one pool and one postgres.js instance', async () => {
    const shared = pool();
    const sql = postgres(server.url, { max: 2, onnotice: () => {} });
    try {
      const stores = [
        new PostgresReplayStore({ client: shared, table: 'shared_a' }),
        new PostgresReplayStore({ client: shared, table: 'shared_b' }),
        new PostgresReplayStore({ client: sql, table: 'shared_a' }),
        new PostgresReplayStore({ client: sql, table: 'shared_b' }),
      ];
      // at start-up, as documented: a store asked before it knows the table's life fails closed
      // when the table began after the store did (here: created by a sibling a moment later)
      await Promise.all(stores.map((store) => store.ready()));
      const key = 's'.repeat(43);
      const expiresAt = Date.now() + 5000;
      expect(await stores[0]!.useOnce(key, expiresAt)).toBe(true);
      expect(await stores[1]!.useOnce(key, expiresAt)).toBe(true);
      expect(await stores[2]!.useOnce(key, expiresAt)).toBe(false);
      expect(await stores[3]!.useOnce(key, expiresAt)).toBe(false);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('refuses bad keys and expiries with a typed error', async () => {
    const store = new PostgresReplayStore({ client: pool(), table: 'bad_input' });
    for (const [key, expiresAt] of [
      ['', Date.now()],
      ['x'.repeat(513), Date.now()],
      [42, Date.now()],
      ['k', Number.NaN],
      ['k', Number.POSITIVE_INFINITY],
      ['k', '1' as unknown as number],
    ] as Array<[string, number]>) {
      const e = await store.useOnce(key, expiresAt).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ReplayStoreError);
      expect((e as ReplayStoreError).reason).toBe('replay_store_error');
    }
    // a NUL, which PostgreSQL text cannot hold: refused by the server, still typed
    const nul = await store.useOnce('a\u0000b', Date.now() + 5000).catch((x: unknown) => x);
    expect(nul).toBeInstanceOf(ReplayStoreError);
  });
});

describe('PostgresReplayStore options', () => {
  const client = { query: async () => ({ rows: [] }) };
  it('validates them at construction with DPoPConfigError', () => {
    const bad: Array<[unknown, RegExp]> = [
      [undefined, /options/],
      [{}, /client/],
      [{ client: {} }, /client/],
      [{ client: () => undefined }, /client/],
      [{ client, table: 'Replay' }, /table/],
      [{ client, table: 'replay; DROP TABLE users' }, /table/],
      [{ client, table: '"replay"' }, /table/],
      [{ client, table: 'a.b.c' }, /table/],
      [{ client, table: '1replay' }, /table/],
      [{ client, table: 'r'.repeat(51) }, /table/],
      [{ client, table: 42 }, /table/],
      [{ client, unlogged: 'yes' }, /unlogged/],
      [{ client, createTable: 1 }, /createTable/],
      [{ client, statementTimeoutMs: 0 }, /statementTimeoutMs/],
      [{ client, statementTimeoutMs: Number.NaN }, /statementTimeoutMs/],
      [{ client, cleanupEvery: 0 }, /cleanupEvery/],
      [{ client, cleanupEvery: 1.5 }, /cleanupEvery/],
      [{ client, cleanupBatch: 0 }, /cleanupBatch/],
      [{ client, cleanupBatch: 1e6 }, /cleanupBatch/],
      [{ client, onWarning: 'log' }, /onWarning/],
    ];
    for (const [options, field] of bad) {
      let error: unknown;
      try {
        new PostgresReplayStore(options as never);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(DPoPConfigError);
      expect(String((error as Error).message)).toMatch(field);
    }
    expect(() => postgresReplaySchema('x-y')).toThrow(DPoPConfigError);
    expect(new PostgresReplayStore({ client, table: 'app.popkit_replay_2' })).toBeDefined();
  });
});
