// The shipped dashboard and rules against a real Prometheus (Debian's `prometheus`, started here
// on 127.0.0.1 with a generated config, stopped by its process group): the example authorization
// server and API (JWT and introspection) on 127.0.0.1 take demo-like traffic from
// @popkit/dpop-client; Prometheus scrapes their /metrics every second (the API over HTTPS, with
// the test CA) and evaluates recording.yml and alerts.yml. Then every dashboard query and every
// rule expression runs through the HTTP API: valid, naming only metrics the exporter really
// produced, and (dashboard and recording rules) returning data.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePrometheus } from '../../../test-support/prometheus.ts';
import type { PrometheusServer } from '../src/prometheus.ts';
import { startPrometheus } from '../src/prometheus.ts';
import type { Stack } from '../src/stack.ts';
import { startStack } from '../src/stack.ts';
import { dashboardQueries, metricNames, prometheusQuery } from '../src/dashboard.ts';

const available = requirePrometheus();
const DASHBOARD = JSON.parse(
  readFileSync(new URL('../grafana/popkit-dashboard.json', import.meta.url), 'utf8'),
) as unknown;

interface Rule {
  type: 'recording' | 'alerting';
  name: string;
  query: string;
  health: string;
  lastError?: string;
  lastEvaluation: string;
}
interface RuleGroup {
  name: string;
  file: string;
  rules: Rule[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!available)('dashboard and rules against a real Prometheus', () => {
  let stack: Stack;
  let prom: PrometheusServer;
  /** Every metric name the exporter produced, read from the targets' /metrics. */
  let exposed: Set<string>;
  let groups: RuleGroup[];

  beforeAll(async () => {
    stack = await startStack();
    prom = await startPrometheus([stack.api, stack.as], stack.caPem);
    // both targets scraped once before any traffic, so rates see the increase
    const up = async () => (await prom.query('up == 1')).length;
    for (let i = 0; (await up()) < 2; i++) {
      if (i > 300) throw new Error(`targets not up: ${JSON.stringify(await prom.api('targets'))}`);
      await sleep(100);
    }
    await stack.traffic();
    await sleep(1500);
    await stack.traffic();
    await sleep(1500);
    // an introspection outage: the introspection API fails closed (503), the SLO's bad events
    // (two rounds: a counter's first sample shows no increase, the second one does)
    stack.introspectionDown = true;
    await stack.traffic();
    await sleep(1500);
    await stack.traffic();
    stack.introspectionDown = false;
    // a few more scrapes and rule evaluations (both every second)
    await sleep(4000);
    exposed = new Set<string>();
    for (const target of [stack.api, stack.as])
      for (const name of exposition(await stack.scrape(target))) exposed.add(name);
    groups = (await prom.api<{ groups: RuleGroup[] }>('rules')).groups;
  });

  afterAll(async () => {
    const pid = prom?.pid;
    const dir = prom?.dir;
    await prom?.stop();
    await stack?.close();
    if (pid !== undefined) {
      expect(() => process.kill(pid, 0), 'prometheus still running').toThrow();
      expect(existsSync(dir!), 'temporary directory removed').toBe(false);
    }
  });

  it('scrapes the API over HTTPS (test CA) and the authorization server', async () => {
    const { activeTargets } = await prom.api<{
      activeTargets: Array<{ scrapePool: string; health: string; scrapeUrl: string }>;
    }>('targets');
    expect(activeTargets.map((t) => [t.scrapePool, t.health, t.scrapeUrl.split(':')[0]])).toEqual(
      expect.arrayContaining([
        ['popkit-api', 'up', 'https'],
        ['popkit-as', 'up', 'http'],
      ]),
    );
    // what the issue lists, as the exporter spells it
    for (const name of [
      'dpop_verification_duration_bucket',
      'dpop_replays_total',
      'dpop_signature_failures_total',
      'dpop_nonce_challenges_total',
      'dpop_proof_clock_skew_bucket',
      'dpop_proof_size_bucket',
      'dpop_access_token_size_bucket',
      'dpop_replay_store_duration_bucket',
      'dpop_replay_store_fill',
      'dpop_introspection_duration_bucket',
      'dpop_jwks_duration_bucket',
    ])
      expect(exposed, name).toContain(name);
  });

  it('every dashboard query names only metrics the exporter produced', () => {
    const queries = dashboardQueries(DASHBOARD);
    expect(queries.length).toBeGreaterThanOrEqual(20);
    for (const q of queries) {
      const names = metricNames(q.expr);
      expect(names.length, `${q.panel}: ${q.expr}`).toBeGreaterThan(0);
      for (const name of names) expect(exposed, `${q.panel}: ${name}`).toContain(name);
    }
  });

  it('every dashboard query is valid PromQL and returns data after the traffic', async () => {
    const invalid: string[] = [];
    const empty: string[] = [];
    for (const q of dashboardQueries(DASHBOARD)) {
      // throws unless Prometheus answers status success
      const result = await prom.query(prometheusQuery(q.expr)).catch((error: Error) => {
        invalid.push(`${q.panel} [${q.refId}]: ${error.message}`);
        return undefined;
      });
      if (result && !result.some((s) => Number.isFinite(Number(s.value[1]))))
        empty.push(`${q.panel} [${q.refId}]: ${q.expr}`);
    }
    expect(invalid).toEqual([]);
    expect(empty).toEqual([]);
  });

  it('the template variables find the jobs and endpoints', async () => {
    const jobs = await prom.api<string[]>('label/job/values', {
      'match[]': 'dpop_verification_duration_count',
    });
    expect(jobs.sort()).toEqual(['popkit-api', 'popkit-as']);
    const endpoints = await prom.api<string[]>('label/dpop_endpoint/values', {
      'match[]': 'dpop_verification_duration_count',
    });
    expect(endpoints.sort()).toEqual(['resource', 'token']);
  });

  it('recording.yml and alerts.yml load with health ok, and every rule was evaluated', () => {
    const files = new Set(groups.map((g) => g.file.split('/').pop()));
    expect([...files].sort()).toEqual(['alerts.yml', 'recording.yml']);
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.filter((r) => r.type === 'alerting')).toHaveLength(9);
    expect(rules.filter((r) => r.type === 'recording')).toHaveLength(10);
    for (const r of rules) {
      expect(r.health, `${r.name}: ${r.lastError}`).toBe('ok');
      expect(r.lastEvaluation, r.name).not.toMatch(/^0001-/);
    }
  });

  it('every rule expression is valid and names only exporter metrics or recorded series', async () => {
    const rules = groups.flatMap((g) => g.rules);
    const recorded = new Set(rules.filter((r) => r.type === 'recording').map((r) => r.name));
    for (const r of rules) {
      await prom.query(r.query);
      const names = metricNames(r.query);
      expect(names.length, r.name).toBeGreaterThan(0);
      for (const name of names)
        expect(exposed.has(name) || recorded.has(name), `${r.name}: ${name}`).toBe(true);
    }
  });

  it('every recording rule returns data after the traffic, and its series is recorded', async () => {
    const empty: string[] = [];
    for (const r of groups.flatMap((g) => g.rules).filter((r) => r.type === 'recording')) {
      const direct = await prom.query(r.query);
      const stored = await prom.query(r.name);
      if (!direct.some((s) => Number.isFinite(Number(s.value[1])))) empty.push(`${r.name} (query)`);
      if (stored.length === 0) empty.push(`${r.name} (recorded)`);
    }
    expect(empty).toEqual([]);
  });

  it('the introspection outage shows as SLO errors, not as refusals', async () => {
    const errors = await prom.query(
      'sum by (dpop_reason) (dpop_verification_duration_count{dpop_outcome="error"})',
    );
    expect(errors.map((s) => s.metric.dpop_reason)).toEqual(['introspection_unavailable']);
    const ratio = await prom.query('dpop:verification_errors:ratio_rate5m > 0');
    expect(ratio.map((s) => [s.metric.job, s.metric.dpop_endpoint])).toEqual([
      ['popkit-api', 'resource'],
    ]);
    const failed = await prom.query(
      'sum(dpop_introspection_duration_count{dpop_introspection_result="error"})',
    );
    expect(Number(failed[0]?.value[1])).toBeGreaterThan(0);
  });

  it('the demo traffic is visible: replays, signature failures, introspection, token endpoint', async () => {
    const value = async (expr: string) => Number((await prom.query(expr))[0]?.value[1] ?? NaN);
    const rounds = 4; // on each API, two of them during the introspection outage
    // a proof is recorded only once its token is valid: no replay while introspection is down
    expect(await value('sum(dpop_replays_total)')).toBe(2 * rounds - 2);
    expect(await value('sum(dpop_signature_failures_total{dpop_signature_of="proof"})')).toBe(
      2 * rounds,
    );
    expect(
      await value('sum(dpop_introspection_duration_count{dpop_introspection_result="active"})'),
    ).toBeGreaterThan(0);
    expect(
      await value(
        'sum(dpop_verification_duration_count{job="popkit-as",dpop_endpoint="token",dpop_outcome="accepted"})',
      ),
    ).toBe(2 * rounds);
    expect(
      await value('sum(dpop_proof_clock_skew_count) - sum(dpop_proof_clock_skew_bucket{le="60"})'),
    ).toBe(6 * rounds);
  });
});

/** The metric names of a Prometheus text exposition (sample lines). */
function exposition(text: string): string[] {
  return [...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)].map((m) => m[1]!);
}
