// The replay store as an attacker and a busy client would meet it (simulated clock, real proofs).
import { describe, expect, it } from 'vitest';
import {
  anonymousFloodAtTokenEndpoint,
  busyKey,
  nonceFloodAtApi,
  successRate,
} from '@popkit/example-shared/floods';

describe('replay store floods', () => {
  it('10 token holders flooding nonce proofs (iat +24 h and plausible) never refuse a normal client', async () => {
    const r = await nonceFloodAtApi();
    expect(r.legitRefusals).toEqual({});
    expect(successRate(r)).toBe(100);
    expect(r.legitSent).toBeGreaterThanOrEqual(100);
    expect(r.checks).toEqual({ rightAfter: true, anHourLater: true, emptiedAfterAnHour: true });
    // far-future iat is refused outright (half the flood); the store stayed below capacity
    expect(r.attackerRecorded).toBeLessThan(r.attackerSent / 2);
    expect(r.entriesAfterFlood).toBeLessThan(4000);
  });

  for (const nonces of [false, true]) {
    it(`an anonymous fresh-key flood at the token endpoint records nothing (nonces ${nonces ? 'on' : 'off'})`, async () => {
      const r = await anonymousFloodAtTokenEndpoint({ nonces });
      expect(r.legitRefusals).toEqual({});
      expect(r.legitAccepted).toBe(r.legitSent);
      expect(r.attackerRecorded).toBe(0);
      expect(r.checks.onlyCommittedRecorded).toBe(true);
    });
  }

  it('one key at 1,000 proofs/s for 60 s is served in full, and 100 replays are all refused', async () => {
    const r = await busyKey({ perSecond: 1000, seconds: 60, replays: 100 });
    expect(r.legitRefusals).toEqual({});
    expect(r.legitAccepted).toBe(60_000);
    expect(r.checks.everyReplayRefused).toBe(true);
    expect(r.entriesAfterFlood).toBe(60_000); // each lives 70 s: none dropped early
  });
});
