// Every fixture through BOTH the CLI (spawned as a real process through the workspace bin) and
// the real verifier (createDPoPAuth / createProofVerifier, replay: false, the fixture's now):
// the explanation's reason is the verifier's `error.reason`, and every failing step says how to
// fix it.
import { readFileSync, readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Explanation } from '../src/explain.ts';
import type { Fixture } from '../fixtures/fixtures.ts';
import type { DPoPRejectReason } from '@popkit/dpop-verifier/internal-checks';
import { REFUSALS } from '@popkit/dpop-verifier/internal-checks';
import { CLIENT, SERVER_STATE_REASONS, buildFixtures } from '../fixtures/fixtures.ts';
import type { CliRun } from './helpers.ts';
import { BIN, cliArgs, pool, run, verdict } from './helpers.ts';

const fixtures = buildFixtures();
/** Every reason the verifier has (its one table of refusals). */
const ALL_REASONS = Object.keys(REFUSALS) as DPoPRejectReason[];

const runs = new Map<string, CliRun>();

beforeAll(async () => {
  const results = await pool(fixtures, 6, (f) => run(BIN, cliArgs(f)));
  fixtures.forEach((f, i) => runs.set(f.name, results[i]!));
}, 120_000);

describe('fixtures', () => {
  it('cover every reason: a fixture each, or listed (README) as server state', () => {
    const covered = new Set(fixtures.map((f) => f.reason));
    const serverState = Object.keys(SERVER_STATE_REASONS) as DPoPRejectReason[];
    expect(covered.has(null)).toBe(true);
    // every reason of the verifier is a fixture's or a server-state one, never both
    expect(ALL_REASONS.filter((r) => !covered.has(r) && !serverState.includes(r))).toEqual([]);
    expect(serverState.filter((r) => covered.has(r))).toEqual([]);
    expect(serverState.filter((r) => !ALL_REASONS.includes(r))).toEqual([]);
    // the README lists the server-state reasons, each with why
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Reasons explain cannot reproduce'));
    for (const reason of serverState) {
      expect(section, reason).toContain(`| \`${reason}\` | ${SERVER_STATE_REASONS[reason]} |`);
    }
  });

  it('the fixture files are what the generator makes', () => {
    const dir = new URL('../fixtures/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(fixtures.map((f) => `${f.name}.json`).sort());
    for (const f of fixtures) {
      const text = readFileSync(new URL(`${f.name}.json`, dir), 'utf8');
      expect(JSON.parse(text) as Fixture, `${f.name}.json is stale: pnpm run fixtures`).toEqual(f);
    }
  });

  it.each(fixtures.map((f) => [f.name, f] as const))(
    '%s: the CLI and the verifier agree',
    async (_name, fixture) => {
      const refusal = await verdict(fixture);
      const cli = runs.get(fixture.name)!;
      expect(cli.stderr).toBe('');
      const explanation = JSON.parse(cli.stdout) as Explanation;
      expect(refusal?.reason ?? null).toBe(fixture.reason);
      expect(explanation.reason).toBe(refusal?.reason ?? null);
      expect(explanation.code).toBe(refusal?.code ?? null);
      expect(explanation.step).toBe(fixture.step);
      expect(explanation.ok).toBe(refusal === null);
      expect(cli.code).toBe(refusal === null ? 0 : 1);
      const failed = explanation.steps.filter((s) => s.status === 'failed');
      if (refusal === null) expect(failed).toEqual([]);
      else {
        expect(failed.map((s) => s.step)).toContain(fixture.step);
        expect(failed.find((s) => s.step === fixture.step)!.reason).toBe(fixture.reason);
      }
      for (const step of failed) {
        expect(step.ok).toBe(false);
        expect(step.fix, `${fixture.name}: step ${step.step}`).toMatch(/\S{3}/);
      }
      // RFC 9449 §4.3 checks 1 to 12, the binding checks, and the replay check, each once
      expect(explanation.steps.map((s) => s.step)).toEqual([
        'authorization',
        1,
        'token',
        'scheme',
        'certificate',
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        'jkt',
        'scope',
        'replay',
      ]);
      expect(explanation.steps.at(-1)).toMatchObject({
        step: 'replay',
        status: 'not_checked',
        ok: null,
      });
      // never the proof or the token in full, never a private key member
      for (const secret of [
        ...fixture.request.dpop,
        ...fixture.request.authorization.map((a) => a.split(' ')[1]!),
      ])
        if (secret.length > 60) expect(cli.stdout).not.toContain(secret);
      expect(cli.stdout).not.toContain(CLIENT.jwk.d);
    },
  );

  it('the text output names the failed check, expected, found and fix', () => {
    const text = runs.get('htu')!;
    expect(text.code).toBe(1);
    const e = JSON.parse(text.stdout) as Explanation;
    const step9 = e.steps.find((s) => s.step === 9)!;
    expect(step9).toMatchObject({
      ok: false,
      expected: 'https://api.example.com/orders',
      found: 'https://api.example.com:8443/orders',
    });
    expect(step9.fix).toContain('publicUrl');
    // the checks after htu still ran
    expect(e.steps.find((s) => s.step === 12)!.status).toBe('passed');
    expect(e.steps.find((s) => s.step === 6)!.status).toBe('passed');
  });
});
