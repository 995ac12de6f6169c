// `pnpm demo`: starts an authorization server and resource servers on 127.0.0.1, runs every
// attack a token thief would try, and prints what happened. `--json` prints JSON instead.
import type { ScenarioResult } from './scenarios.ts';

// oidc-provider announces its development-only settings (in-memory storage, dev login pages,
// Node 20) at start-up; this demo uses them on purpose. Collect them into one quiet line.
const notices: string[] = [];
for (const method of ['warn', 'info'] as const) {
  const original = console[method].bind(console);
  console[method] = (...args: unknown[]) => {
    const text = String(args[0] ?? '');
    if (/oidc-provider (WARNING|NOTICE)/.test(text))
      notices.push(text.replace(/\u001b\[[0-9;]*m/g, ''));
    else original(...args);
  };
}
const { runDemo } = await import('./scenarios.ts');

const json = process.argv.includes('--json');
const color = process.stdout.isTTY && !process.env.NO_COLOR && !json;
const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
const VERDICT_COLOR: Record<ScenarioResult['verdict'], string> = {
  OK: '32',
  DEFEATED: '32',
  SKIPPED: '33',
  FAILED: '31',
  BREACH: '1;31',
};

function table(rows: ScenarioResult[]): string {
  const head = ['#', 'Scenario', 'Caller holds', 'HTTP', 'Error', 'Verdict'];
  const cells = rows.map((r) => [
    r.id,
    r.scenario,
    r.holds,
    r.status === null ? '-' : String(r.status),
    r.error ?? '-',
    r.verdict,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  const out = [paint('1', line(head).trimEnd()), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const c of cells) {
    const verdict = c[5] as ScenarioResult['verdict'];
    out.push(
      line(c.slice(0, 5).concat(''))
        .trimEnd()
        .padEnd(widths.slice(0, 5).reduce((a, b) => a + b + 2, 0)) +
        paint(VERDICT_COLOR[verdict], verdict),
    );
  }
  return out.join('\n');
}

const started = performance.now();
try {
  const results = await runDemo({
    log: json ? () => {} : (line) => console.log(paint('2', `  · ${line}`)),
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const attacks = results.filter((r) => r.kind === 'attack');
  const defeated = attacks.filter((r) => r.verdict === 'DEFEATED').length;
  const skipped = results.filter((r) => r.verdict === 'SKIPPED').length;
  const failed = results.filter((r) => r.verdict === 'FAILED' || r.verdict === 'BREACH');
  if (json) {
    console.log(
      JSON.stringify({ results, seconds: Number(seconds), ok: failed.length === 0 }, null, 2),
    );
  } else {
    if (notices.length)
      console.log(
        paint(
          '2',
          `  · oidc-provider: ${notices.length} development-mode notices (in-memory adapter, dev login pages, runtime) hidden`,
        ),
      );
    console.log(`\n${table(results)}\n`);
    const legit = results.filter((r) => r.kind === 'legitimate');
    console.log(
      `${defeated}/${attacks.length - skipped} attacks defeated, ${legit.filter((r) => r.verdict === 'OK').length}/${legit.length} legitimate calls succeeded` +
        `${skipped ? `, ${skipped} skipped` : ''} in ${seconds} s`,
    );
    if (failed.length)
      console.log(paint('1;31', `NOT OK: ${failed.map((r) => `${r.id} ${r.verdict}`).join(', ')}`));
  }
  process.exitCode = failed.length === 0 ? 0 : 1;
} catch (error) {
  // No stack traces for the audience: the message is enough, and never holds a secret.
  console.error(paint('31', `demo failed: ${(error as Error).message}`));
  process.exitCode = 2;
}
