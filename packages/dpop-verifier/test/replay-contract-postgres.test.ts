import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe } from 'vitest';
import type { PostgresServer } from '../../../test-support/postgres.ts';
import { requirePostgres, startPostgres } from '../../../test-support/postgres.ts';
import type { PostgresReplayStoreOptions } from '../src/postgres/index.ts';
import { PostgresReplayStore } from '../src/postgres/index.ts';
import { replayStoreContract } from './replay-contract.ts';

const available = requirePostgres();

describe.skipIf(!available)('Postgres', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** A pool that survives the server's outages (idle clients' errors are expected). */
  const pool = () => {
    const p = new pg.Pool({ connectionString: server.url, max: 8, connectionTimeoutMillis: 1000 });
    p.on('error', () => {});
    return p;
  };
  const sql = () =>
    postgres(server.url, { max: 8, onnotice: () => {}, connect_timeout: 1, idle_timeout: 5 });

  const faults = (store: () => PostgresReplayStore, garbage: () => PostgresReplayStore[]) => ({
    pause: async () => {
      // the postmaster and its backends: nothing answers
      server.pause();
      return async () => server.resume();
    },
    down: async () => {
      await server.kill(); // immediate shutdown: the restart runs crash recovery
      return () => server.restart();
    },
    garbage: () => (void store(), garbage()),
  });

  /** Rows whose check answers are garbage: wrong counts, wrong types, wrong shapes. */
  const garbageRows = (epoch: string): unknown[][] => [
    [],
    [
      { fresh: 1, epoch },
      { fresh: 1, epoch },
    ],
    [{ fresh: 2, epoch }],
    [{ fresh: '1', epoch }],
    [{ fresh: true, epoch }],
    [{ fresh: 1, epoch: 42 }],
    [{ fresh: 1, epoch: '' }],
    [{ epoch }],
    [null],
    ['1'],
  ];
  const isCheck = (text: string) => text.startsWith('WITH ins AS');

  replayStoreContract(
    'PostgresReplayStore over pg',
    async () => {
      const [p1, p2, p3] = [pool(), pool(), pool()];
      const options: Omit<PostgresReplayStoreOptions, 'client'> = {
        table: 'contract_pg',
        statementTimeoutMs: 1000, // 64 in flight on 8 connections, on a busy CI machine
        onWarning: () => {},
      };
      const a = new PostgresReplayStore({ client: p1, ...options });
      const b = new PostgresReplayStore({ client: p2, ...options });
      await Promise.all([a.ready(), b.ready()]); // start-up: both know the table's life
      const lying = (answer: unknown) =>
        new PostgresReplayStore({
          ...options,
          client: {
            query: (config: { text: string }) =>
              isCheck(config.text) ? Promise.resolve(answer) : p3.query(config as never),
          },
        });
      return {
        a,
        b,
        size: async () =>
          Number((await p3.query('SELECT count(*)::int AS n FROM contract_pg')).rows[0].n),
        lateMs: 0,
        faults: faults(
          () => a,
          () => [
            ...garbageRows(a.epoch).map((rows) => lying({ rows })),
            lying({}),
            lying(null),
            lying({ rows: 'x' }),
          ],
        ),
        close: async () => void (await Promise.all([p1.end(), p2.end(), p3.end()])),
      };
    },
    { withFaults: true },
  );

  replayStoreContract(
    'PostgresReplayStore over postgres.js',
    async () => {
      const [s1, s2, s3] = [sql(), sql(), sql()];
      const options = { table: 'contract_pgjs', statementTimeoutMs: 1000, onWarning: () => {} };
      const a = new PostgresReplayStore({ client: s1, ...options });
      const b = new PostgresReplayStore({ client: s2, ...options });
      await Promise.all([a.ready(), b.ready()]);
      const lying = (answer: unknown) =>
        new PostgresReplayStore({
          ...options,
          client: Object.assign(() => undefined, {
            unsafe: (text: string, params?: never[], opts?: { prepare?: boolean }) =>
              isCheck(text) ? Promise.resolve(answer) : s3.unsafe(text, params, opts),
          }),
        });
      return {
        a,
        b,
        size: async () => (await s3`SELECT count(*)::int AS n FROM contract_pgjs`)[0]!.n as number,
        lateMs: 0,
        faults: faults(
          () => a,
          () => [...garbageRows(a.epoch).map((rows) => lying(rows)), lying({}), lying(undefined)],
        ),
        close: async () => void (await Promise.all([s1, s2, s3].map((s) => s.end({ timeout: 1 })))),
      };
    },
    { withFaults: true },
  );
});
