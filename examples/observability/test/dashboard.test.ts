// The dashboard JSON on its own (no binaries): importable (schema, datasource variable), every
// panel of the issue present, and the PromQL reader the Prometheus test relies on.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dashboardQueries, metricNames, prometheusQuery } from '../src/dashboard.ts';

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}
const dashboard = JSON.parse(
  readFileSync(new URL('../grafana/popkit-dashboard.json', import.meta.url), 'utf8'),
) as {
  schemaVersion: number;
  uid: string;
  __inputs: Array<{ name: string; pluginId: string }>;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
  panels: Panel[];
};

describe('grafana/popkit-dashboard.json', () => {
  it('is importable: recent schema, a Prometheus datasource input and variable, unique ids', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBe('popkit-dpop');
    expect(dashboard.__inputs).toEqual([
      expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' }),
    ]);
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v.type]));
    expect(vars).toEqual({ DS_PROMETHEUS: 'datasource', job: 'query', endpoint: 'query' });
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every panel queries ${DS_PROMETHEUS}, and no two panels overlap', () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource?.uid, p.title).toBe('${DS_PROMETHEUS}');
    }
  });

  it('has the panels the issue lists', () => {
    const titles = dashboard.panels.filter((p) => p.type !== 'row').map((p) => p.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Validation rate by outcome',
        'Verification latency',
        'Refusals by reason',
        'Replays refused',
        'Signature failures',
        'Nonce challenges',
        'Clock skew of proofs',
        'DPoP proof size',
        'Access token size',
        'Introspection calls by result',
        'Introspection latency',
        'JWKS fetches',
        'Replay store fill',
        'Replay store latency',
      ]),
    );
    const latency = dashboardQueries(dashboard).filter((q) => q.panel === 'Verification latency');
    expect(latency.map((q) => q.expr.match(/histogram_quantile\(([\d.]+)/)?.[1])).toEqual([
      '0.5',
      '0.95',
      '0.99',
    ]);
  });

  it('reads the metric names of an expression, not its functions, labels or keywords', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, dpop_endpoint) (rate(dpop_proof_size_bucket{job=~"$job",le!="x y"}[$__rate_interval])))',
      ),
    ).toEqual(['dpop_proof_size_bucket']);
    expect(
      metricNames(
        '(sum(rate(a_total[5m])) or vector(0)) / on (job) group_left sum without (instance) (b_count offset 1h) > 1e3 and bool c',
      ),
    ).toEqual(['a_total', 'b_count', 'c']);
    expect(metricNames('dpop:replays:ratio_rate5m > 0.05')).toEqual(['dpop:replays:ratio_rate5m']);
  });

  it('replaces the Grafana variables as Grafana does for "All"', () => {
    expect(
      prometheusQuery('rate(x{job=~"$job",dpop_endpoint=~"${endpoint}"}[$__rate_interval])'),
    ).toBe('rate(x{job=~".*",dpop_endpoint=~".*"}[1m])');
  });
});
