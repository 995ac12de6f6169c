// The shipped Prometheus rules, checked and unit-tested by the real promtool:
// `promtool check rules` and `promtool test rules prometheus/alerts.test.yml`. Then every alert is
// broken twice (never fires; fires on any data) and the unit tests must catch both.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePrometheus } from '../../../test-support/prometheus.ts';

const available = requirePrometheus();
const DIR = fileURLToPath(new URL('../prometheus/', import.meta.url));
const FILES = ['recording.yml', 'alerts.yml', 'alerts.test.yml'];

function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('promtool', args, { cwd, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        output: stdout + stderr,
      }),
    );
  });
}

const alertsText = readFileSync(join(DIR, 'alerts.yml'), 'utf8');
const testsText = readFileSync(join(DIR, 'alerts.test.yml'), 'utf8');
const ALERTS = [...alertsText.matchAll(/^ {6}- alert: (\w+)$/gm)].map((m) => m[1]!);

/** alerts.yml with the `expr` of `alert` rewritten by `change`. */
function mutate(alert: string, change: (expr: string) => string): string {
  const start = alertsText.indexOf(`- alert: ${alert}\n`);
  const next = alertsText.indexOf('- alert: ', start + 1);
  const end = next === -1 ? alertsText.length : next;
  const block = alertsText.slice(start, end);
  const exprStart = block.indexOf('expr:');
  const exprEnd = block.indexOf('\n        for:');
  const expr = block.slice(exprStart, exprEnd);
  const changed = change(expr);
  expect(changed).not.toBe(expr);
  return (
    alertsText.slice(0, start) +
    block.slice(0, exprStart) +
    changed +
    block.slice(exprEnd) +
    alertsText.slice(end)
  );
}

describe.skipIf(!available)('the Prometheus rules (real promtool)', () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'popkit-promtool-'));
  });
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('every shipped rule file passes promtool check rules', async () => {
    const { code, output } = await promtool(['check', 'rules', 'recording.yml', 'alerts.yml'], DIR);
    expect(output).toMatch(/recording\.yml\s+SUCCESS: \d+ rules found/);
    expect(output).toMatch(/alerts\.yml\s+SUCCESS: 9 rules found/);
    expect(code).toBe(0);
  });

  it('the unit tests pass: promtool test rules alerts.test.yml', async () => {
    const { code, output } = await promtool(['test', 'rules', 'alerts.test.yml'], DIR);
    expect(output).toContain('SUCCESS');
    expect(code).toBe(0);
  });

  it('every alert has labels, annotations and a runbook, and is tested firing and not firing', () => {
    expect(ALERTS).toHaveLength(9);
    for (const alert of ALERTS) {
      const block = alertsText
        .slice(alertsText.indexOf(`- alert: ${alert}\n`))
        .split('- alert:')[1]!;
      expect(block, alert).toMatch(/severity: (page|warning)/);
      expect(block, alert).toMatch(/summary: /);
      expect(block, alert).toMatch(/description: /);
      expect(block, alert).toContain(`README.md#${alert.toLowerCase()}'`);
      const firing = new RegExp(`alertname: ${alert}\\b.*\\n\\s+exp_alerts:\\n\\s+- exp_labels`);
      const quiet = new RegExp(`alertname: ${alert}\\b.*\\n\\s+exp_alerts: \\[\\]`);
      expect(testsText, `${alert} tested firing`).toMatch(firing);
      expect(testsText, `${alert} tested not firing`).toMatch(quiet);
    }
  });

  it.each(ALERTS)(
    'the unit tests catch a broken %s (never fires; fires on any data)',
    async (alert) => {
      const dir = mkdtempSync(join(scratch, `${alert}-`));
      for (const f of FILES) copyFileSync(join(DIR, f), join(dir, f));
      const broken = {
        never: mutate(alert, (expr) =>
          expr.replace(/\n$|$/, ' and on () vector(0) < 0\n').replace(/\n\n$/, '\n'),
        ),
        always: mutate(alert, (expr) => expr.replace(/ > (\([^)]*\)|[\d.]+)/g, ' >= 0')),
      };
      for (const [how, text] of Object.entries(broken)) {
        writeFileSync(join(dir, 'alerts.yml'), text);
        const check = await promtool(['check', 'rules', 'alerts.yml'], dir);
        expect(check.code, `${alert} (${how}) still parses: ${check.output}`).toBe(0);
        const { code, output } = await promtool(['test', 'rules', 'alerts.test.yml'], dir);
        expect(output, `${alert} broken (${how})`).toContain('FAILED');
        expect(code).not.toBe(0);
      }
    },
  );
});
