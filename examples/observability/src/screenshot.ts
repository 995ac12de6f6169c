// `pnpm --filter @popkit/example-observability run screenshot`: renders the dashboard's main
// panels from real data into examples/observability/dashboard.png. It starts the stack of
// stack.ts (authorization server, JWT and introspection APIs on 127.0.0.1) and a real
// Prometheus scraping it every second, drives demo-like traffic for about two minutes, runs
// each panel's PromQL from grafana/popkit-dashboard.json through Prometheus's query_range API
// (rate windows of 20 s instead of Grafana's $__rate_interval), draws the series as SVG in a
// page laid out like the dashboard, and has headless Chromium take the picture. Grafana itself
// is not involved (it is not in Debian). Not run by the tests: it rewrites a tracked file.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../../../test-support/chromium.ts';
import type { DashboardQuery } from './dashboard.ts';
import { dashboardQueries, prometheusQuery } from './dashboard.ts';
import { startPrometheus } from './prometheus.ts';
import { startStack } from './stack.ts';

const OUT = fileURLToPath(new URL('../dashboard.png', import.meta.url));
const DASHBOARD = JSON.parse(
  readFileSync(new URL('../grafana/popkit-dashboard.json', import.meta.url), 'utf8'),
) as unknown;
const PANELS = [
  'Validation rate by outcome',
  'Verification latency',
  'Refusals by reason',
  'Error budget burn rate',
  'Replays refused',
  'Signature failures',
  'Nonce challenges',
  'Clock skew of proofs',
  'DPoP proof size',
  'Access token size',
  'Introspection calls by result',
  'Introspection latency',
  'Replay store fill',
  'Replay store latency',
  'Validation success (SLI)',
];
const SECONDS = Number(process.env.SCREENSHOT_SECONDS ?? 120);
const COLORS = [
  '#73bf69',
  '#f2cc0c',
  '#5794f2',
  '#ff9830',
  '#f2495c',
  '#b877d9',
  '#8ab8ff',
  '#fade2a',
];

interface Series {
  name: string;
  points: Array<[number, number]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function legend(format: string, metric: Record<string, string>): string {
  return format.replaceAll(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => metric[k] ?? '');
}

function formatValue(v: number, unit: string): string {
  if (unit === 'percentunit') return `${(v * 100).toFixed(v >= 0.999 ? 2 : 1)}%`;
  if (unit === 's')
    return v >= 1
      ? `${v.toFixed(1)} s`
      : v >= 0.001
        ? `${(v * 1000).toFixed(1)} ms`
        : `${(v * 1e6).toFixed(0)} µs`;
  if (unit === 'bytes') return v >= 1024 ? `${(v / 1024).toFixed(1)} KiB` : `${v.toFixed(0)} B`;
  if (unit === 'reqps') return `${v.toFixed(v < 1 ? 2 : 1)}/s`;
  return v.toFixed(v < 10 ? 2 : 0);
}

function chart(title: string, unit: string, series: Series[], start: number, end: number): string {
  const W = 560;
  const H = 220;
  const L = 64;
  const T = 10;
  const R = 10;
  const B = 24;
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  let max = Math.max(...values, 0);
  let min = Math.min(...values, 0);
  if (unit === 'percentunit' && title.includes('SLI')) min = Math.min(...values, 1) - 0.0005;
  if (max === min) max = min + 1;
  if (unit === 'percentunit' && max <= 1) max = Math.min(1, max + (max - min) * 0.08);
  else max += (max - min) * 0.08;
  const x = (t: number) => L + ((t - start) / (end - start)) * (W - L - R);
  const y = (v: number) => T + (1 - (v - min) / (max - min)) * (H - T - B);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = min + f * (max - min);
    return `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${formatValue(v, unit)}</text>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const t = start + f * (end - start);
    const d = new Date(t * 1000);
    const label = `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}:${String(d.getUTCSeconds()).padStart(2, '0')}`;
    const anchor = f === 0 ? 'start' : f === 1 ? 'end' : 'middle';
    return `<text x="${x(t)}" y="${H - 6}" text-anchor="${anchor}">${label}</text>`;
  });
  const lines = series.map((s, i) => {
    // NaN (no rate yet) breaks the line, as Grafana does
    const segments: string[][] = [[]];
    for (const [t, v] of s.points) {
      if (Number.isFinite(v)) segments.at(-1)!.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      else if (segments.at(-1)!.length) segments.push([]);
    }
    return segments
      .filter((seg) => seg.length)
      .map((seg) => `<polyline points="${seg.join(' ')}" stroke="${COLORS[i % COLORS.length]}"/>`)
      .join('');
  });
  const keys = series
    .map((s, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${s.name}</span>`)
    .join('');
  return `<section><h2>${title}</h2><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${grid.join('')}${ticks.join('')}${lines.join('')}</svg><div class="legend">${keys || '<span>no data</span>'}</div></section>`;
}

const stack = await startStack();
let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
try {
  prom = await startPrometheus([stack.api, stack.as], stack.caPem);
  while ((await prom.query('up == 1')).length < 2) await sleep(200);
  const start = Date.now() / 1000;
  console.log(`prometheus ${prom.url}; traffic for ${SECONDS} s`);
  // demo-like traffic in waves: one round, a pause that varies, and a burst in the middle
  // and an introspection outage (503s: SLO errors) from 55 % to 65 % of the run
  let round = 0;
  while (Date.now() / 1000 - start < SECONDS) {
    const elapsed = (Date.now() / 1000 - start) / SECONDS;
    stack.introspectionDown = elapsed > 0.55 && elapsed < 0.65;
    const burst = round % 20 >= 8 && round % 20 < 12 ? 3 : 1;
    await Promise.all(Array.from({ length: burst }, () => stack.traffic()));
    round++;
    await sleep(500 + 700 * Math.abs(Math.sin(round / 4)));
  }
  await sleep(3000);
  const end = Date.now() / 1000;
  const queries = dashboardQueries(DASHBOARD);
  const sections: string[] = [];
  for (const title of PANELS) {
    const targets = queries.filter((q: DashboardQuery) => q.panel === title);
    const series: Series[] = [];
    for (const q of targets) {
      const data = await prom.api<{
        result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }>;
      }>('query_range', {
        query: prometheusQuery(q.expr, '20s'),
        start: String(start),
        end: String(end),
        step: '2',
      });
      for (const r of data.result)
        series.push({
          name: legend(q.legendFormat, r.metric) || q.refId,
          points: r.values.map(([t, v]) => [t, Number(v)]),
        });
    }
    sections.push(chart(title, targets[0]?.unit ?? '', series, start, end));
  }
  const html = `<!doctype html><html><head><meta charset="utf-8"><style>
    body { margin: 0; padding: 16px; background: #111217; color: #ccccdc; font: 13px Inter, Helvetica, Arial, sans-serif; }
    h1 { font-size: 18px; margin: 0 0 4px; color: #fff; } p.sub { margin: 0 0 12px; color: #8e8e9e; }
    main { display: grid; grid-template-columns: repeat(3, 584px); gap: 10px; }
    section { background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; padding: 8px 12px; }
    h2 { font-size: 13px; font-weight: 500; margin: 0 0 4px; color: #d8d9da; }
    svg text { fill: #8e8e9e; font-size: 10px; } .grid { stroke: #2c3235; stroke-width: 1; }
    polyline { fill: none; stroke-width: 1.6; }
    .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; min-height: 16px; font-size: 11px; }
    .legend i { display: inline-block; width: 12px; height: 3px; margin-right: 5px; vertical-align: middle; }
  </style></head><body>
    <h1>popkit: DPoP / mTLS token validation</h1>
    <p class="sub">grafana/popkit-dashboard.json panels, queried from a real Prometheus scraping the example servers during ${Math.round(end - start)} s of demo-like traffic, with a 503 introspection outage in the middle (rate windows 20 s; drawn without Grafana, see README)</p>
    <main>${sections.join('')}</main></body></html>`;
  browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1800, height: 1000 } });
  await page.setContent(html);
  await page.screenshot({ path: OUT, fullPage: true });
  console.log(`wrote ${OUT}`);
} finally {
  await browser?.close();
  await prom?.stop();
  await stack.close();
}
