// The shared fixtures of `@popkit/explain` (packages/explain/fixtures: a request for every
// reason a request can produce, with its expected failing step) through this verifier: each
// gives its reason, and `DPoPError.explanation` names the same check as the explanation's step,
// with fingerprints only (never the token or the proof). The CLI and the page run the same
// fixtures (packages/explain/test).
import { describe, expect, it } from 'vitest';
import { buildFixtures } from '../../explain/fixtures/fixtures.ts';
import type { StepId } from '../../explain/src/steps.ts';
import { verdict } from '../../explain/test/helpers.ts';

/** The explanation's step as the verifier's `explanation.check` names it. */
function checkOf(step: StepId, reason: string): string {
  if (typeof step === 'number') return step === 12 ? 'check 12 (ath)' : `check ${step}`;
  switch (step) {
    case 'jkt':
      return 'check 12 (cnf.jkt)';
    case 'scheme':
      return reason.startsWith('cnf_') ? 'binding (cnf)' : 'binding (scheme)';
    case 'certificate':
      return 'binding (certificate)';
    case 'token':
      return 'access token';
    case 'authorization':
      return 'request';
    default:
      return step;
  }
}

const refused = buildFixtures().filter((f) => f.reason !== null && f.verifier === 'auth');

describe('the explain fixtures through createDPoPAuth', () => {
  it.each(refused.map((f) => [f.name, f] as const))('%s', async (_name, fixture) => {
    const error = await verdict(fixture);
    expect(error?.reason).toBe(fixture.reason);
    const explanation = error!.explanation!;
    expect(explanation).toMatchObject({
      check: checkOf(fixture.step!, fixture.reason!),
      reason: fixture.reason,
      code: error!.code,
      status: error!.status,
    });
    // fingerprints only, and not enumerable (not in JSON.stringify(error))
    const text = JSON.stringify(explanation);
    for (const value of [...fixture.request.dpop, ...fixture.request.authorization])
      expect(text).not.toContain(value.replace(/^(DPoP|Bearer) /, '').slice(0, 40));
    expect(Object.keys(error!)).not.toContain('explanation');
    if (explanation.token !== undefined) expect(explanation.token).toMatch(/^sha256:.{12}$/);
  });
});
