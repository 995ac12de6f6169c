import {
  decodeBase64url,
  decodeBase64urlText,
  importPublicJwk,
  sha256Base64url,
  verifySignature,
} from '#crypto';
import type { VerifyKey } from '#crypto';
import { normalizeHtu } from '@popkit/dpop-client';
import type { ProofAlgorithm } from './algorithms.ts';
import { DEFAULT_ALGORITHMS, isProofAlgorithm } from './algorithms.ts';
import { isStrictBase64url } from './base64url.ts';
import type { DPoPRejectReason } from './errors.ts';
import { DPoPConfigError, DPoPError, proofError } from './errors.ts';
import { checkProofJwk } from './jwk.ts';
import { Lru } from './lru.ts';
import type { NonceCheck, NonceIssuer } from './nonce.ts';
import { EPOCH_BOUND } from './nonce.ts';
import type { ReplayStore } from './replay/types.ts';
import { ReplayStoreError } from './replay/types.ts';
import type { MaybePromise } from './maybe-async.ts';
import { isPromiseLike, settle } from './maybe-async.ts';
import { timingSafeEqual } from './timing-safe.ts';
import { TOKEN_HASH, accessTokenSha256 } from './token-hash.ts';

/** What the proof must match: the request it came with (RFC 9449 §4.3). */
export interface ProofExpectation {
  /** The request method. */
  method: string;
  /** The request URL as the client addressed it (see `publicUrl` behind proxies). */
  url: string | URL;
  /** The access token sent with the request; requires a matching `ath`. */
  accessToken?: string;
  /** The token's `cnf.jkt`, or the authorization request's `dpop_jkt`; requires that key. */
  jkt?: string;
  /** A nonce the proof must carry exactly (for servers that keep nonces themselves). */
  nonce?: string;
  /** Per-request override of `requireNonce`. */
  requireNonce?: boolean;
  /**
   * Who the proof is for, the replay store's unit of fairness: an access token's subject, an
   * authenticated client. Default: the proof key's thumbprint (keys cost nothing, accounts do).
   */
  account?: string;
}

/** An expectation that may carry the access token's hash, computed once per request. @internal */
export interface InternalExpectation extends ProofExpectation {
  [TOKEN_HASH]?: string | Promise<string>;
}

/** Options of {@link createProofVerifier} and {@link verifyProof}. */
export interface VerifyProofOptions {
  /** Allowed `alg` values. Default ES256, EdDSA, Ed25519, PS256, RS256. Never `none` or HMAC. */
  algorithms?: readonly ProofAlgorithm[];
  /** Oldest accepted `iat`, in seconds before now. Default 60. */
  maxAge?: number;
  /** Newest accepted `iat`, in seconds after now. Default 10. */
  clockTolerance?: number;
  /** The replay store, or `false` to opt out explicitly. Required: there is no silent default. */
  replay: ReplayStore | false;
  /** Server nonces (RFC 9449 §8, §9). */
  nonces?: NonceIssuer;
  /**
   * With a valid server nonce (which bounds freshness), how far `iat` may be from the server
   * clock, in seconds, for clients whose clocks are off (plus `clockTolerance`). The proof is
   * still accepted only while its nonce is, and its replay entry lives exactly until then.
   * Default 300 (the customary 5-minute clock-skew allowance); at most 3600.
   */
  nonceIatSkew?: number;
  /** Demand a nonce in every proof (needs `nonces`). Default `true` when `nonces` is set. */
  requireNonce?: boolean;
  /** Longest proof accepted, in characters. Default 8192. */
  maxProofLength?: number;
  /** Longest `jti` accepted. Default 256. */
  maxJtiLength?: number;
  /**
   * Largest RSA modulus accepted in proof keys, in bits (2048 to 8192). Default 4096: larger
   * keys cost the server far more per signature check and add nothing a DPoP key needs.
   */
  maxRsaBits?: number;
  /** Public keys kept imported (LRU). Default 1000. */
  keyCacheSize?: number;
  /** Clock in ms since the epoch, for tests. Default `Date.now`. */
  now?: () => number;
}

/** A proof that passed every check. */
export interface VerifiedProof {
  /** RFC 7638 thumbprint of the proof key: compare with `cnf.jkt`, or put it in `cnf`. */
  jkt: string;
  /** The public key (public members only). */
  jwk: Record<string, string>;
  alg: ProofAlgorithm;
  /** The proof's claims. */
  claims: Record<string, unknown> & { htm: string; htu: string; iat: number; jti: string };
  /** The nonce to send proactively (its `nonce` was valid but not current), if any. */
  nextNonce?: string;
}

/**
 * A proof that passed every check but is not yet recorded in the replay store: `commit` records
 * its `jti` (once; later calls return the same promise) and rejects with a {@link DPoPError}
 * (`invalid_dpop_proof`/`replay`, or a 503 when the store cannot answer) if it was used already.
 */
export interface PreparedProof {
  proof: VerifiedProof;
  /** Records the proof; `account` (see {@link ProofExpectation.account}) if known only now. */
  commit(options?: { account?: string }): Promise<void>;
}

/**
 * A compiled verifier: options were validated once, caches live inside. Calling it checks the
 * proof and records it; `prepare` checks it and leaves recording to `commit` (two-phase, for
 * callers with more checks of their own to run first).
 */
export type ProofVerifier = ((
  proof: string,
  expect: ProofExpectation,
) => Promise<VerifiedProof>) & {
  prepare(proof: string, expect: ProofExpectation): Promise<PreparedProof>;
};

interface Checked {
  result: VerifiedProof;
  jti: string;
  expiresAt: number;
  account: string | undefined;
}

interface HeaderEntry {
  alg: ProofAlgorithm;
  key: VerifyKey;
  jkt: string;
  jwk: Record<string, string>;
  signatureLength: number;
}

const SIGNATURE_LENGTH: Partial<Record<ProofAlgorithm, number>> = {
  ES256: 64,
  ES384: 96,
  ES512: 132,
  EdDSA: 64,
  Ed25519: 64,
};
const MAX_HEADER_CACHE_SEGMENT = 4096;
const DPOP_TYP = /^(?:application\/)?dpop\+jwt$/i;
const MAX_HTU_LENGTH = 8192;
const STALE = {
  iat_too_old: 'The DPoP proof is too old',
  iat_in_future: 'The DPoP proof iat is in the future',
  iat_before_restart: 'The DPoP proof predates the server replay memory; sign a new one',
} as const;

function positive(name: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    throw new DPoPConfigError(name, `must be a number from 0 to ${max}`);
  }
  return value;
}

/**
 * The proof key's thumbprint against the token's `cnf.jkt` (RFC 9449 §6.1), in constant time;
 * throws `invalid_token` / `jkt_mismatch`. @internal
 */
export function checkKeyBinding(proofJkt: string, boundJkt: unknown): void {
  if (typeof boundJkt !== 'string' || !timingSafeEqual(proofJkt, boundJkt)) {
    throw new DPoPError(
      'invalid_token',
      'jkt_mismatch',
      'The access token is not bound to the DPoP proof key',
    );
  }
}

function nonceError(reason: DPoPRejectReason, description: string, nonce: string): DPoPError {
  return new DPoPError('use_dpop_nonce', reason, description, { headers: { 'DPoP-Nonce': nonce } });
}

function parseJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(decodeBase64urlText(segment));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The checks of {@link createProofVerifier}, compiled once: `now` checks and records a proof,
 * returning a promise only when a step needs one (see `maybe-async.ts`). @internal
 */
export interface ProofChecks {
  now(proof: string, expect: ProofExpectation): MaybePromise<VerifiedProof>;
  prepare(proof: string, expect: ProofExpectation): Promise<PreparedProof>;
}

/** Validates the options once and compiles the checks (see {@link createProofVerifier}). @internal */
export function compileProofChecks(options: VerifyProofOptions): ProofChecks {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  if (
    !Array.isArray(algorithms) ||
    algorithms.length === 0 ||
    !algorithms.every(isProofAlgorithm)
  ) {
    throw new DPoPConfigError(
      'algorithms',
      'must be a non-empty list of asymmetric JWS algorithms',
    );
  }
  const allowed = new Set<string>(algorithms);
  const maxAge = positive('maxAge', options.maxAge, 60, 3600);
  const clockTolerance = positive('clockTolerance', options.clockTolerance, 10, 600);
  const maxProofLength = positive('maxProofLength', options.maxProofLength, 8192, 65536);
  const maxJtiLength = positive('maxJtiLength', options.maxJtiLength, 256, 4096);
  const keyCacheSize = positive('keyCacheSize', options.keyCacheSize, 1000, 1_000_000);
  const maxRsaBits = positive('maxRsaBits', options.maxRsaBits, 4096, 8192);
  if (maxRsaBits < 2048) throw new DPoPConfigError('maxRsaBits', 'must be from 2048 to 8192');
  const { replay, nonces } = options;
  // popkit's nonces are bound to the store's epoch; another issuer's are checked by `since` too
  const epochBound = (nonces as { [EPOCH_BOUND]?: boolean } | undefined)?.[EPOCH_BOUND] === true;
  if (
    replay !== false &&
    (replay === null || typeof replay !== 'object' || typeof replay.useOnce !== 'function')
  ) {
    throw new DPoPConfigError(
      'replay',
      'must be a ReplayStore, or false to disable replay detection explicitly',
    );
  }
  if (
    nonces !== undefined &&
    (typeof nonces?.check !== 'function' || typeof nonces?.current !== 'function')
  ) {
    throw new DPoPConfigError('nonces', 'must be a NonceIssuer (createNonceIssuer)');
  }
  const requireNonceDefault = options.requireNonce ?? nonces !== undefined;
  if (requireNonceDefault && nonces === undefined)
    throw new DPoPConfigError('requireNonce', 'needs "nonces"');
  const nonceIatSkew = positive('nonceIatSkew', options.nonceIatSkew, 300, 3600) + clockTolerance;
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw new DPoPConfigError('now', 'must be a function');
  const headers = new Lru<string, HeaderEntry>(Math.max(1, keyCacheSize));
  // Normalised expected htu per request URL string (a server has few routes; bounded).
  const htus = new Lru<string, string>(1024);
  const expectedHtuOf = (url: string | URL): string => {
    const key = typeof url === 'string' ? url : undefined;
    const hit = key === undefined ? undefined : htus.get(key);
    if (hit !== undefined) return hit;
    let normalized: string;
    try {
      normalized = normalizeHtu(url, 'expect.url');
    } catch {
      throw new DPoPError(
        'invalid_request',
        'invalid_url',
        'The request URL cannot be used for DPoP',
      );
    }
    if (key !== undefined && key.length <= 2048) htus.set(key, normalized);
    return normalized;
  };
  const keys = new Lru<string, VerifyKey>(Math.max(1, keyCacheSize));

  async function parseHeader(segment: string): Promise<HeaderEntry> {
    const header = parseJsonObject(segment);
    if (header === undefined)
      throw proofError('proof_malformed', 'The DPoP proof header is not a JSON object');
    // RFC 7515 §4.1.9: "application/dpop+jwt" is the same media type (names are case-insensitive)
    if (typeof header.typ !== 'string' || !DPOP_TYP.test(header.typ))
      throw proofError('typ', 'The DPoP proof typ must be dpop+jwt');
    const alg = header.alg;
    if (typeof alg !== 'string' || !allowed.has(alg))
      throw proofError('alg', 'The DPoP proof alg is not allowed');
    if (header.crit !== undefined)
      throw proofError('crit', 'The DPoP proof uses an unsupported critical header');
    // RFC 7797 unencoded payloads need "crit", which is refused: a lone b64 is refused too.
    if (header.b64 !== undefined)
      throw proofError('b64', 'The DPoP proof must not use the b64 header parameter');
    const checked = checkProofJwk(alg as ProofAlgorithm, header.jwk, maxRsaBits);
    if (typeof checked === 'string') throw proofError('jwk', `Invalid DPoP proof key: ${checked}`);
    // Keyed by algorithm and key: a WebCrypto key is bound to one algorithm, so an RS256 proof
    // must not poison the cache for the same key's PS256 proofs.
    const cacheKey = `${alg}.${checked.canonical}`;
    let key = keys.get(cacheKey);
    if (key === undefined) {
      try {
        key = await importPublicJwk(alg as ProofAlgorithm, checked.members);
      } catch (cause) {
        throw proofError('jwk', 'Invalid DPoP proof key: the key could not be imported', cause);
      }
      keys.set(cacheKey, key);
    }
    const entry: HeaderEntry = {
      alg: alg as ProofAlgorithm,
      key,
      jkt: await sha256Base64url(checked.canonical),
      jwk: checked.members,
      signatureLength:
        SIGNATURE_LENGTH[alg as ProofAlgorithm] ?? Math.floor((checked.members.n!.length * 6) / 8),
    };
    if (segment.length <= MAX_HEADER_CACHE_SEGMENT) headers.set(segment, entry);
    return entry;
  }

  // Each step returns its result when it has it, and a promise only when it does not (a header
  // not yet cached, WebCrypto, nonces, an asynchronous store): with node:crypto and the memory
  // store, a proof is checked and recorded without a promise or a microtask.

  /** 1-2: size, shape and header (cached by segment), then the rest. */
  function check(proof: string, expect: ProofExpectation): MaybePromise<Checked> {
    if (expect === null || typeof expect !== 'object')
      throw new DPoPConfigError('expect', 'must be an object');
    const expectedHtu = expectedHtuOf(expect.url);
    // 1. size and shape
    if (typeof proof !== 'string' || proof.length === 0)
      throw proofError('missing_proof', 'A DPoP proof is required');
    if (proof.length > maxProofLength)
      throw proofError('proof_too_long', 'The DPoP proof is too long');
    const d1 = proof.indexOf('.');
    const d2 = d1 < 0 ? -1 : proof.indexOf('.', d1 + 1);
    if (d1 <= 0 || d2 < 0 || proof.indexOf('.', d2 + 1) !== -1) {
      throw proofError('proof_malformed', 'The DPoP proof is not a compact JWS');
    }
    const h = proof.slice(0, d1);
    const p = proof.slice(d1 + 1, d2);
    const s = proof.slice(d2 + 1);
    // 2. header: a cached segment is byte-identical to one that passed every header check
    const entry = headers.get(h);
    if (
      !isStrictBase64url(p) ||
      !isStrictBase64url(s) ||
      (entry === undefined && !isStrictBase64url(h))
    ) {
      throw proofError('proof_malformed', 'The DPoP proof is not strict base64url');
    }
    if (entry === undefined)
      return parseHeader(h).then((parsed) =>
        checkSigned(parsed, proof, d2, p, s, expect, expectedHtu),
      );
    return checkSigned(entry, proof, d2, p, s, expect, expectedHtu);
  }

  /** 3-4: the key binding, before any expensive step, then the signature. */
  function checkSigned(
    entry: HeaderEntry,
    proof: string,
    d2: number,
    p: string,
    s: string,
    expect: ProofExpectation,
    expectedHtu: string,
  ): MaybePromise<Checked> {
    // 3. a proof by another key is refused cheaply
    if (expect.jkt !== undefined) checkKeyBinding(entry.jkt, expect.jkt);
    // 4. signature
    const signature = decodeBase64url(s);
    if (signature.length !== entry.signatureLength)
      throw proofError('signature', 'The DPoP proof signature is invalid');
    let answer: boolean | Promise<boolean>;
    try {
      answer = verifySignature(entry.alg, entry.key, proof.slice(0, d2), signature);
    } catch {
      answer = false;
    }
    if (typeof answer === 'boolean') return checkClaims(answer, entry, p, expect, expectedHtu);
    return answer.then(
      (valid) => checkClaims(valid, entry, p, expect, expectedHtu),
      () => checkClaims(false, entry, p, expect, expectedHtu),
    );
  }

  /** 5: claims; freshness, with or without a server nonce; then `ath`. */
  function checkClaims(
    valid: boolean,
    entry: HeaderEntry,
    p: string,
    expect: ProofExpectation,
    expectedHtu: string,
  ): MaybePromise<Checked> {
    if (!valid) throw proofError('signature', 'The DPoP proof signature is invalid');
    const claims = parseJsonObject(p);
    if (claims === undefined)
      throw proofError('proof_malformed', 'The DPoP proof payload is not a JSON object');
    const { htm, htu, iat, jti } = claims;
    const method = typeof expect.method === 'string' ? expect.method : '';
    if (typeof htm !== 'string' || htm !== method)
      throw proofError('htm', 'The DPoP proof htm does not match the request method');
    if (typeof htu !== 'string' || htu.length > MAX_HTU_LENGTH)
      throw proofError('htu', 'The DPoP proof htu does not match the request URL');
    if (htu !== expectedHtu) {
      let normalized: string | undefined;
      try {
        normalized = normalizeHtu(htu);
      } catch {
        normalized = undefined;
      }
      if (normalized !== expectedHtu)
        throw proofError('htu', 'The DPoP proof htu does not match the request URL');
    }
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > maxJtiLength) {
      throw proofError('jti', 'The DPoP proof jti is missing or too long');
    }
    if (typeof iat !== 'number' || !Number.isFinite(iat))
      throw proofError('iat_missing', 'The DPoP proof iat is missing');
    const nowMs = now();
    const nowSec = nowMs / 1000;
    // Optional registered claims, if present, are honoured (RFC 7519 §4.1.4-4.1.5).
    const { exp, nbf } = claims;
    if (exp !== undefined && (typeof exp !== 'number' || !(exp + clockTolerance > nowSec)))
      throw proofError('exp', 'The DPoP proof has expired');
    if (nbf !== undefined && (typeof nbf !== 'number' || !(nbf - clockTolerance <= nowSec)))
      throw proofError('nbf', 'The DPoP proof is not valid yet');
    if (claims.nonce !== undefined && typeof claims.nonce !== 'string')
      throw proofError('nonce_malformed', 'The DPoP proof nonce must be a string');
    if (nonces !== undefined) return checkNonce(entry, claims, iat, jti, expect, nowMs);
    if (expect.nonce !== undefined) {
      if (typeof claims.nonce !== 'string' || !timingSafeEqual(claims.nonce, expect.nonce)) {
        throw new DPoPError(
          'use_dpop_nonce',
          claims.nonce === undefined ? 'nonce_missing' : 'nonce_invalid',
          'The DPoP nonce is missing or wrong',
          {
            headers: { 'DPoP-Nonce': expect.nonce },
          },
        );
      }
    }
    const stale = staleness(iat, nowSec, undefined);
    if (stale !== undefined) {
      throw proofError(stale, STALE[stale]);
    }
    return checkAth(entry, claims, jti, expect, (iat + maxAge + clockTolerance) * 1000, undefined);
  }

  /** Why `iat` is outside the accepted window, if it is. */
  function staleness(
    iat: number,
    nowSec: number,
    nonceCheck: NonceCheck | undefined,
  ): 'iat_too_old' | 'iat_in_future' | 'iat_before_restart' | undefined {
    // A valid server nonce bounds freshness (RFC 9449 §11.1): iat need only be plausible, within
    // nonceIatSkew of the server clock (for clients whose clocks are off).
    const oldest = nonceCheck?.valid ? nowSec - nonceIatSkew : nowSec - maxAge;
    const newest = nonceCheck?.valid ? nowSec + nonceIatSkew : nowSec + clockTolerance;
    if (iat < oldest) return 'iat_too_old';
    if (iat > newest) return 'iat_in_future';
    // Without a nonce, a proof older than the replay store's memory (a restart) may have been
    // accepted already: refused for one acceptance window after the start. (A nonce is bound
    // to the store's epoch instead.)
    if ((!nonceCheck?.valid || !epochBound) && replay !== false) {
      const since = replay.since;
      // (a store whose start lies ahead of this verifier's clock runs on another clock: tests)
      // (iat is in whole seconds: "before" means before the second the store started)
      if (typeof since === 'number' && since <= nowSec * 1000 && iat < Math.floor(since / 1000))
        return 'iat_before_restart';
    }
    return undefined;
  }

  /** 5, with server nonces: the nonce, then freshness (a stale proof is told the nonce). */
  async function checkNonce(
    entry: HeaderEntry,
    claims: Record<string, unknown>,
    iat: number,
    jti: string,
    expect: ProofExpectation,
    nowMs: number,
  ): Promise<Checked> {
    const issuer = nonces!;
    const epoch = replay === false ? undefined : replay.epoch;
    const nonce = claims.nonce as string | undefined;
    const required = expect.requireNonce ?? requireNonceDefault;
    let nonceCheck: NonceCheck | undefined;
    let nextNonce: string | undefined;
    if (nonce !== undefined) {
      nonceCheck = await issuer.check(nonce, nowMs, epoch);
      if (!nonceCheck?.valid)
        throw nonceError(
          'nonce_invalid',
          'The DPoP nonce is invalid or expired',
          await issuer.current(nowMs, epoch),
        );
      if (!nonceCheck.current) nextNonce = await issuer.current(nowMs, epoch);
    } else if (required) {
      throw nonceError(
        'nonce_missing',
        'A DPoP nonce is required',
        await issuer.current(nowMs, epoch),
      );
    }
    const stale = staleness(iat, nowMs / 1000, nonceCheck);
    if (stale !== undefined)
      throw nonceError(
        stale,
        'The DPoP proof is not fresh; use the DPoP-Nonce',
        await issuer.current(nowMs, epoch),
      );
    // The replay entry lives until the nonce expires (after that the nonce is refused), else
    // until iat leaves the window.
    const expiresAt = nonceCheck?.valid
      ? nonceCheck.expiresAt
      : (iat + maxAge + clockTolerance) * 1000;
    return checkAth(entry, claims, jti, expect, expiresAt, nextNonce);
  }

  /** 6: `ath` against the access token, compared as strings in constant time. */
  function checkAth(
    entry: HeaderEntry,
    claims: Record<string, unknown>,
    jti: string,
    expect: ProofExpectation,
    expiresAt: number,
    nextNonce: string | undefined,
  ): MaybePromise<Checked> {
    if (expect.accessToken === undefined)
      return proofChecked(entry, claims, jti, expiresAt, nextNonce, expect.account);
    const { ath } = claims;
    if (typeof ath !== 'string')
      throw proofError('ath_missing', 'The DPoP proof must contain ath for this access token');
    const hash =
      (expect as InternalExpectation)[TOKEN_HASH] ?? accessTokenSha256(expect.accessToken);
    if (typeof hash === 'string') {
      athMatches(ath, hash);
      return proofChecked(entry, claims, jti, expiresAt, nextNonce, expect.account);
    }
    return hash.then((h) => {
      athMatches(ath, h);
      return proofChecked(entry, claims, jti, expiresAt, nextNonce, expect.account);
    });
  }

  // 7. replay, last: only a proof that passed every other check is recorded.
  function record(checked: Checked, account = checked.account): void | Promise<void> {
    if (replay === false) return;
    const { result, jti, expiresAt } = checked;
    // the unit of fairness: the account when the caller knows it, else the key
    const scope = typeof account === 'string' && account.length > 0 ? account : result.jkt;
    let answer: boolean | PromiseLike<boolean>;
    try {
      const hashed = sha256Base64url(`${result.jkt}.${jti}`);
      answer =
        typeof hashed === 'string'
          ? replay.useOnce(hashed, expiresAt, scope)
          : hashed.then((key) => replay.useOnce(key, expiresAt, scope));
    } catch (cause) {
      throw storeUnavailable(cause);
    }
    if (!isPromiseLike(answer)) return firstUse(answer);
    return Promise.resolve(answer).then(firstUse, (cause: unknown) => {
      throw storeUnavailable(cause);
    });
  }

  const checkNow = (proof: string, expect: ProofExpectation): MaybePromise<VerifiedProof> => {
    const checked = check(proof, expect);
    return isPromiseLike(checked) ? checked.then(commitNow) : commitNow(checked);
  };
  const commitNow = (checked: Checked): MaybePromise<VerifiedProof> => {
    const recorded = record(checked);
    return recorded === undefined ? checked.result : recorded.then(() => checked.result);
  };
  const prepare = async (proof: string, expect: ProofExpectation): Promise<PreparedProof> => {
    const checked = await check(proof, expect);
    let committed: Promise<void> | undefined;
    return {
      proof: checked.result,
      commit: (options) => (committed ??= settle(() => record(checked, options?.account))),
    };
  };
  return { now: checkNow, prepare };
}

/** `ath` against the access token's hash, in constant time (RFC 9449 §4.3 step 11). */
function athMatches(ath: string, tokenHash: string): void {
  if (!timingSafeEqual(ath, tokenHash))
    throw proofError('ath_mismatch', 'The DPoP proof ath does not match the access token');
}

/** A proof that passed every check before the replay store. */
function proofChecked(
  entry: HeaderEntry,
  claims: Record<string, unknown>,
  jti: string,
  expiresAt: number,
  nextNonce: string | undefined,
  account: string | undefined,
): Checked {
  const result: VerifiedProof = {
    jkt: entry.jkt,
    jwk: entry.jwk,
    alg: entry.alg,
    claims: claims as VerifiedProof['claims'],
  };
  if (nextNonce !== undefined) result.nextNonce = nextNonce;
  return { result, jti, expiresAt, account };
}

/** The replay store could not answer: fail closed, as a 503 the client may retry. */
function storeUnavailable(cause: unknown): DPoPError {
  const reason = cause instanceof ReplayStoreError ? cause.reason : 'replay_store_error';
  return new DPoPError(
    'server_error',
    reason,
    'The DPoP replay check is unavailable; retry later',
    {
      headers: { 'Retry-After': '1' },
      cause,
    },
  );
}

/** The store's answer: anything but `true` is a replay (RFC 9449 §11.1). */
function firstUse(first: unknown): void {
  if (first !== true) throw proofError('replay', 'The DPoP proof has already been used');
}

/**
 * Builds a DPoP proof verifier (RFC 9449 §4.3). Options are validated here, once; the returned
 * function runs the checks in this order, so a rejected proof never burns a `jti`:
 *
 * 1. size (`maxProofLength`) and JWS compact shape: three strict base64url segments;
 * 2. header: JSON object, `typ` `dpop+jwt` (or `application/dpop+jwt`), `alg` allowed
 *    (asymmetric only), no `crit` or `b64`, `jwk` a public key of the type `alg` needs (no
 *    private members, valid coordinates, RSA 2048 to `maxRsaBits` bits with e = 65537) that the
 *    platform imports (off-curve points are refused);
 * 3. `jkt` against `cnf.jkt` / `dpop_jkt`, constant time, before the expensive signature check;
 * 4. signature;
 * 5. claims: `htm` exact, `htu` equal after {@link normalizeHtu} on both sides, `jti` present
 *    and bounded, `exp`/`nbf` when present, `nonce` a string (checked when nonces are
 *    configured), `iat` within
 *    `[now - maxAge, now + clockTolerance]`, or, with a valid server nonce (which bounds
 *    freshness), within `nonceIatSkew` (5 min) of now;
 * 6. `ath` against the access token, compared as strings in constant time;
 * 7. the replay store, last: key = SHA-256(jkt, jti), kept exactly as long as the proof could be
 *    accepted again: until its nonce expires, or else until `iat + maxAge + clockTolerance`.
 *
 * Imported keys are cached by header (bounded LRU), and on Node signatures are checked with
 * `node:crypto`. Every failure is a {@link DPoPError}; messages never contain the proof.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export function createProofVerifier(options: VerifyProofOptions): ProofVerifier {
  const checks = compileProofChecks(options);
  const verify = (proof: string, expect: ProofExpectation): Promise<VerifiedProof> =>
    settle(() => checks.now(proof, expect));
  return Object.assign(verify, { prepare: checks.prepare });
}

const compiled = new WeakMap<VerifyProofOptions, ProofVerifier>();

/**
 * Verifies one DPoP proof (RFC 9449 §4.3); see {@link createProofVerifier} for the checks.
 * The verifier compiled from `options` is cached per options object, so pass the same object on
 * every call (or use `createProofVerifier`).
 *
 * @example
 * ```ts
 * const options = { replay: new MemoryReplayStore(), nonces };
 * const { jkt } = await verifyProof(req.headers.dpop, { method: 'GET', url, accessToken, jkt: claims.cnf.jkt }, options);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export function verifyProof(
  proof: string,
  expect: ProofExpectation,
  options: VerifyProofOptions,
): Promise<VerifiedProof> {
  let verifier = compiled.get(options);
  if (verifier === undefined) {
    verifier = createProofVerifier(options);
    compiled.set(options, verifier);
  }
  return verifier(proof, expect);
}
