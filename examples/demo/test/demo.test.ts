import { describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import { requirePostgres } from '../../../test-support/postgres.ts';
import { REDIS_INSTALL } from '../../../test-support/redis.ts';
import type { ScenarioResult } from '../src/scenarios.ts';
import { runDemo } from '../src/scenarios.ts';

const haveRedis = requireBinary('redis-server', REDIS_INSTALL);
const havePostgres = requirePostgres();

describe('the replay-attack demo, as assertions', () => {
  let results: ScenarioResult[];
  const lines: string[] = [];

  it('runs every scenario against real servers in well under a minute', async () => {
    const start = Date.now();
    results = await runDemo({ log: (line) => lines.push(line) });
    expect(Date.now() - start).toBeLessThan(60_000);
    expect(results.map((r) => r.id)).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5a',
      '5b',
      '6a',
      '6b',
      '7',
      '8a',
      '8b',
      '8c',
      '9',
      '10a',
      '10b',
      '10c',
      '11a',
      '11b',
      '12',
    ]);
  });

  it('every legitimate call succeeds', () => {
    for (const r of results.filter((x) => x.kind === 'legitimate'))
      expect([r.id, r.status, r.verdict]).toEqual([r.id, 200, 'OK']);
  });

  it('every attack is defeated with the RFC error the scenario expects', () => {
    const expected: Record<string, [number, string]> = {
      '2': [401, 'invalid_dpop_proof'],
      '3': [401, 'invalid_token'],
      '4': [401, 'invalid_token'],
      '5a': [401, 'invalid_dpop_proof'],
      '5b': [401, 'invalid_dpop_proof'],
      '6a': [401, 'use_dpop_nonce'],
      '6b': [401, 'use_dpop_nonce'],
      '7': [401, 'invalid_dpop_proof'],
      '8b': [401, 'invalid_token'],
      '8c': [401, 'invalid_token'],
      '9': [401, 'invalid_dpop_proof'],
      '10b': [400, 'invalid_grant'],
      '11a': [401, 'use_dpop_nonce'],
    };
    for (const r of results.filter((x) => x.kind === 'attack')) {
      if (r.id === '9' && !haveRedis) {
        expect(r.verdict).toBe('SKIPPED');
        continue;
      }
      expect([r.id, r.status, r.error, r.verdict]).toEqual([r.id, ...expected[r.id]!, 'DEFEATED']);
    }
  });

  it('a restart does not reopen replays, and a flooding account does not squeeze a busy service', () => {
    expect(
      lines.some((l) =>
        /after the restart: the captured proof got 401 use_dpop_nonce; the client retried 1 time/.test(
          l,
        ),
      ),
    ).toBe(true);
    const flood = lines.find((l) => l.startsWith('account flood:'))!;
    expect(flood).toMatch(/the service: 30\/30 served/);
    expect(flood).toMatch(/\d+ refused 503 over its share/);
  });

  it('shows the nonce challenges and their automatic retry in the log', () => {
    expect(lines.some((l) => /answered use_dpop_nonce; retrying once/.test(l))).toBe(true);
    if (haveRedis)
      expect(lines.some((l) => /10 accepted exactly once, 0 accepted twice/.test(l))).toBe(true);
  });
});

describe.skipIf(!havePostgres)(
  'scenario 9 over PostgreSQL (the default when redis-server is absent)',
  () => {
    it('two API instances sharing a PostgresReplayStore accept each raced proof exactly once', async () => {
      const lines: string[] = [];
      const results = await runDemo({ sharedStore: 'postgres', log: (line) => lines.push(line) });
      const race = results.find((r) => r.id === '9')!;
      expect(race.scenario).toMatch(/sharing PostgreSQL/);
      expect([race.status, race.error, race.verdict]).toEqual([
        401,
        'invalid_dpop_proof',
        'DEFEATED',
      ]);
      expect(lines.some((l) => /share a PostgresReplayStore/.test(l))).toBe(true);
      expect(lines.some((l) => /10 accepted exactly once, 0 accepted twice/.test(l))).toBe(true);
    });
  },
);
