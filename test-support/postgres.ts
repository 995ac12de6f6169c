export {
  POSTGRES_INSTALL,
  findPostgresBinary,
  startPostgres,
} from '../examples/shared/src/postgres.ts';
export type { PostgresServer } from '../examples/shared/src/postgres.ts';
import { POSTGRES_INSTALL, findPostgresBinary } from '../examples/shared/src/postgres.ts';
import { requireBinary } from './binaries.ts';

/**
 * Whether tests that need a real PostgreSQL can run (`initdb` and `postgres`, found under
 * /usr/lib/postgresql/<major>/bin or on PATH), with {@link requireBinary}'s rule: under `CI` a
 * missing server fails with the install command; elsewhere the suite is skipped loudly.
 */
export function requirePostgres(): boolean {
  const initdb = findPostgresBinary('initdb');
  const postgres = findPostgresBinary('postgres');
  return (
    requireBinary(initdb ?? 'initdb', POSTGRES_INSTALL) &&
    requireBinary(postgres ?? 'postgres', POSTGRES_INSTALL)
  );
}
