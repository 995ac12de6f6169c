/**
 * RFC 9449 §4.3 checks 10 and 11: the `nonce` the server provided (§8, §9), and the proof's
 * creation time within an acceptable window (§11.1), bounded either by `iat` or by a valid
 * server nonce. Also: a proof older than the replay store's memory (a restart, `since`) is
 * refused, and nonces are bound to the store's `epoch`.
 * @module
 */
import type { NonceCheck } from '../nonce.ts';
import { refuse } from '../errors.ts';
import { timingSafeEqual } from '../timing-safe.ts';
import type { ProofClaims } from './claims.ts';
import type { ProofPolicy } from './policy.ts';
import type { ProofExpectation } from './types.ts';

/** How long the proof stays acceptable, and the nonce to send proactively. @internal */
export interface Freshness {
  /** ms since the epoch: the replay entry must live until then (§11.1). */
  expiresAt: number;
  nextNonce: string | undefined;
}

type Staleness = 'iat_too_old' | 'iat_in_future' | 'iat_before_restart';

/**
 * Checks 10 and 11. Without server nonces (`policy.nonces`) synchronous: `expect.nonce`
 * compared exactly, then `iat` within `[now - maxAge, now + clockTolerance]` and not before
 * the store's start. With them asynchronous ({@link checkServerNonce}). @internal
 */
export function checkFreshness(
  policy: ProofPolicy,
  claims: ProofClaims,
  expect: ProofExpectation,
  nowMs: number,
): Freshness | Promise<Freshness> {
  const { nonce, iat } = claims;
  if (nonce !== undefined && typeof nonce !== 'string') throw refuse('nonce_malformed');
  if (policy.nonces !== undefined) return checkServerNonce(policy, claims, expect, nowMs);
  // 10. a nonce the caller keeps itself
  if (expect.nonce !== undefined && (nonce === undefined || !timingSafeEqual(nonce, expect.nonce)))
    throw refuse(nonce === undefined ? 'nonce_missing' : 'nonce_invalid', {
      description: 'The DPoP nonce is missing or wrong',
      headers: { 'DPoP-Nonce': expect.nonce },
    });
  // 11. iat
  const stale = staleness(policy, iat, nowMs / 1000, undefined);
  if (stale !== undefined) throw withSkew(refuse(stale), iat, nowMs);
  return { expiresAt: (iat + policy.maxAge + policy.clockTolerance) * 1000, nextNonce: undefined };
}

/**
 * Checks 10 and 11 with server nonces: the nonce (valid for the store's epoch; required
 * unless `requireNonce` says otherwise), then freshness. Every refusal is `use_dpop_nonce`
 * with the current nonce. The replay entry lives until the nonce expires (after that the nonce
 * is refused), else until `iat` leaves the window. @internal
 */
async function checkServerNonce(
  policy: ProofPolicy,
  claims: ProofClaims,
  expect: ProofExpectation,
  nowMs: number,
): Promise<Freshness> {
  const issuer = policy.nonces!;
  const epoch = policy.replay === false ? undefined : policy.replay.epoch;
  const nonce = claims.nonce as string | undefined;
  const retry = async (reason: Parameters<typeof refuse>[0], description?: string) =>
    refuse(reason, {
      code: 'use_dpop_nonce',
      ...(description === undefined ? {} : { description }),
      headers: { 'DPoP-Nonce': await issuer.current(nowMs, epoch) },
    });
  let nonceCheck: NonceCheck | undefined;
  let nextNonce: string | undefined;
  // 10
  if (nonce !== undefined) {
    nonceCheck = await issuer.check(nonce, nowMs, epoch);
    if (!nonceCheck?.valid) throw await retry('nonce_invalid');
    if (!nonceCheck.current) nextNonce = await issuer.current(nowMs, epoch);
  } else if (expect.requireNonce ?? policy.requireNonce) {
    throw await retry('nonce_missing');
  }
  // 11
  const stale = staleness(policy, claims.iat, nowMs / 1000, nonceCheck);
  if (stale !== undefined)
    throw withSkew(
      await retry(stale, 'The DPoP proof is not fresh; use the DPoP-Nonce'),
      claims.iat,
      nowMs,
    );
  const expiresAt = nonceCheck?.valid
    ? nonceCheck.expiresAt
    : (claims.iat + policy.maxAge + policy.clockTolerance) * 1000;
  return { expiresAt, nextNonce };
}

/** `iat` minus the server clock, in seconds, of the proofs refused as not fresh. */
const skews = new WeakMap<object, number>();

function withSkew<E extends object>(error: E, iat: number, nowMs: number): E {
  skews.set(error, clockSkew(iat, nowMs));
  return error;
}

/** Ten years, in seconds: what `clockSkew` reports at most, either way. */
const MAX_SKEW = 10 * 365 * 86_400;

/**
 * `iat` minus the server clock in seconds, bounded to ±10 years (a client sends any number),
 * for `onResult`. @internal
 */
export function clockSkew(iat: number, nowMs: number): number {
  const skew = iat - nowMs / 1000;
  return skew > MAX_SKEW ? MAX_SKEW : skew < -MAX_SKEW ? -MAX_SKEW : skew;
}

/**
 * How far the refused proof's `iat` was from the server clock (seconds; negative: the client
 * clock is behind), when `error` is a refusal of check 11, for `onResult`. @internal
 */
export function refusalSkew(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null ? skews.get(error) : undefined;
}

/** Check 11: why `iat` is outside the accepted window, if it is (§11.1). */
function staleness(
  policy: ProofPolicy,
  iat: number,
  nowSec: number,
  nonceCheck: NonceCheck | undefined,
): Staleness | undefined {
  // A valid server nonce bounds freshness (§11.1): iat need only be plausible, within
  // nonceIatSkew of the server clock (for clients whose clocks are off).
  const valid = nonceCheck?.valid === true;
  const oldest = valid ? nowSec - policy.nonceIatSkew : nowSec - policy.maxAge;
  const newest = valid ? nowSec + policy.nonceIatSkew : nowSec + policy.clockTolerance;
  if (iat < oldest) return 'iat_too_old';
  if (iat > newest) return 'iat_in_future';
  // Without a nonce, a proof older than the replay store's memory (a restart) may have been
  // accepted already: refused for one acceptance window after the start. (A nonce is bound
  // to the store's epoch instead.)
  const { replay } = policy;
  if ((!valid || !policy.epochBound) && replay !== false) {
    const since = replay.since;
    // (a store whose start lies ahead of this verifier's clock runs on another clock: tests)
    // (iat is in whole seconds: "before" means before the second the store started)
    if (typeof since === 'number' && since <= nowSec * 1000 && iat < Math.floor(since / 1000))
      return 'iat_before_restart';
  }
  return undefined;
}
