// Fairness by account (issue: "diluted by a few tokens"): one attacker account holding 10
// tokens, at any rate, against legitimate accounts, at the default store budget, on a
// simulated clock. Keys cost an attacker nothing; accounts do.
import { describe, expect, it } from 'vitest';
import { accountFlood, partySuccess } from '@popkit/example-shared/floods';
import type { FloodParty } from '@popkit/example-shared/floods';

const attacker = (perSecond: number): FloodParty => ({
  name: 'attacker',
  accounts: 1,
  keysPerAccount: 10,
  perSecond,
});

describe('replay store fairness by account (default budget, simulated clock)', () => {
  for (const rate of [5_000, 20_000]) {
    it(`one attacker account with 10 tokens at ${rate}/s: keys of other accounts at 25/s and 1,000/s keep >= 99.9 %`, () => {
      const r = accountFlood({
        seconds: 120,
        parties: [
          attacker(rate),
          { name: 'service', accounts: 1, perSecond: 1000 },
          { name: 'users', accounts: 100, perSecond: 25 },
        ],
      });
      console.info(
        `attacker ${rate}/s: service ${partySuccess(r, 'service').toFixed(3)} %, users ${partySuccess(r, 'users').toFixed(3)} %, attacker ${partySuccess(r, 'attacker').toFixed(1)} %, ${r.entries} entries, worst call ${r.worstCallMs.toFixed(2)} ms`,
      );
      expect(partySuccess(r, 'service')).toBeGreaterThanOrEqual(99.9);
      expect(partySuccess(r, 'users')).toBeGreaterThanOrEqual(99.9);
      // the attacker was held to its share: refused, never evicting anyone
      expect(r.parties.attacker!.refusals.replay_over_share).toBeGreaterThan(0);
      expect(r.parties.service!.refusals).toEqual({});
    }, 120_000);
  }

  it('busy clients in a large population are not squeezed by one attacker token (was 3.3 % lost)', () => {
    const r = accountFlood({
      seconds: 120,
      parties: [
        attacker(4_500),
        { name: 'busy', accounts: 50, perSecond: 50 },
        { name: 'population', accounts: 2_000, perSecond: 1 },
      ],
    });
    expect(partySuccess(r, 'busy')).toBeGreaterThanOrEqual(99.9);
    expect(partySuccess(r, 'population')).toBeGreaterThanOrEqual(99.9);
  }, 120_000);

  it('the old unit (the key) is what the attacker diluted: the same flood by key squeezes the service', () => {
    // a store of 10k, an attacker account with 10 keys: by key, the service key is squeezed;
    // by account, it is served
    // (legitimate demand: 20/s x 70 s + 10 x 1/s x 70 s = 2,100 entries, within half the store)
    const parties: FloodParty[] = [
      attacker(2_000),
      { name: 'service', accounts: 1, perSecond: 20 },
      { name: 'users', accounts: 10, perSecond: 1 },
    ];
    const byKey = accountFlood({ seconds: 90, maxEntries: 10_000, parties, unit: 'key' });
    const byAccount = accountFlood({ seconds: 90, maxEntries: 10_000, parties });
    console.info(
      `store of 10k: service by key ${partySuccess(byKey, 'service').toFixed(1)} %, by account ${partySuccess(byAccount, 'service').toFixed(1)} %`,
    );
    expect(partySuccess(byKey, 'service')).toBeLessThan(90);
    expect(partySuccess(byAccount, 'service')).toBeGreaterThanOrEqual(99.9);
  }, 120_000);

  it('a mass expiry (one account choosing iat so half the table expires in one second) stalls no call', () => {
    const r = accountFlood({
      seconds: 100,
      parties: [
        { name: 'attacker', accounts: 1, keysPerAccount: 10, perSecond: 20_000, lifetime: 30 },
        { name: 'service', accounts: 1, perSecond: 1000 },
      ],
    });
    expect(partySuccess(r, 'service')).toBeGreaterThanOrEqual(99.9);
    // (bounded work per call: test/memory-store.test.ts times the call after a mass expiry, and
    // the bench reports the worst single call on a quiet machine)
    console.info(
      `mass expiry: worst single call ${r.worstCallMs.toFixed(2)} ms (wall clock, GC included)`,
    );
  }, 120_000);
});
