/**
 * `@popkit/dpop-verifier/postgres`: a replay store shared by every server instance, in
 * PostgreSQL (`pg` or postgres.js).
 * @packageDocumentation
 */
export {
  POSTGRES_REPLAY_SCHEMA,
  POSTGRES_REPLAY_TABLE,
  PostgresReplayStore,
  postgresReplaySchema,
} from '../replay/postgres.ts';
export type { PgLike, PostgresJsLike, PostgresReplayStoreOptions } from '../replay/postgres.ts';
