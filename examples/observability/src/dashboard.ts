// Reading the Grafana dashboard's PromQL: every target of every panel (rows included), the
// metric names an expression references, and the expression as plain Prometheus can run it.

export interface DashboardQuery {
  panel: string;
  refId: string;
  expr: string;
  legendFormat: string;
  unit: string;
}

interface Panel {
  title?: string;
  type?: string;
  panels?: Panel[];
  targets?: Array<{ refId?: string; expr?: string; legendFormat?: string }>;
  fieldConfig?: { defaults?: { unit?: string } };
}

/** Every PromQL target of the dashboard, in panel order. */
export function dashboardQueries(dashboard: unknown): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const walk = (panels: Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? [])
        if (typeof t.expr === 'string')
          out.push({
            panel: p.title ?? '?',
            refId: t.refId ?? '?',
            expr: t.expr,
            legendFormat: t.legendFormat ?? '',
            unit: p.fieldConfig?.defaults?.unit ?? '',
          });
      walk(p.panels);
    }
  };
  walk((dashboard as { panels?: Panel[] }).panels);
  return out;
}

/**
 * The expression with Grafana's variables replaced as Grafana would for "All" and a short
 * range: `$job`, `$endpoint` (regex matchers) by `.*`, `$__rate_interval` by `1m`.
 */
export function prometheusQuery(expr: string, rateInterval = '1m'): string {
  return expr
    .replaceAll(/\$\{?__rate_interval\}?/g, rateInterval)
    .replaceAll(/\$\{?(job|endpoint)\}?/g, '.*');
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers outside strings, label matchers,
 * ranges and grouping clauses, that are not functions, aggregations or keywords.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replaceAll(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replaceAll(/\{[^}]*\}/g, ' ')
    .replaceAll(/\[[^\]]*\]/g, ' ')
    .replaceAll(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // a function or an aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    const before = bare.slice(0, m.index!);
    if (/[0-9.]$/.test(before)) continue; // the tail of a number (1e3) or a duration
    names.add(m[0]);
  }
  return [...names];
}
