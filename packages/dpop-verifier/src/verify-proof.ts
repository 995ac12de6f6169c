/**
 * DPoP proof verification (RFC 9449 §4.3): the orchestrator and the public entry points. Each
 * check lives in `src/proof/`, one module per concern of the RFC.
 * @module
 */
import type { normalizeHtu } from '@popkit/dpop-client';
import { DPoPConfigError } from './errors.ts';
import { rejectUnknownOptions } from './options.ts';
import type { MaybePromise, Step } from './maybe-async.ts';
import { isPromiseLike, keep, runSteps, settle } from './maybe-async.ts';
import { checkAth, checkKeyBinding } from './proof/binding.ts';
import type { ProofClaims } from './proof/claims.ts';
import { checkClaims, checkValidity, expectedHtu } from './proof/claims.ts';
import type { CompactJws } from './proof/compact.ts';
import { splitCompact } from './proof/compact.ts';
import type { Freshness } from './proof/freshness.ts';
import { checkFreshness } from './proof/freshness.ts';
import { checkHeader } from './proof/header.ts';
import type { HeaderEntry, ProofPolicy } from './proof/policy.ts';
import { compileProofPolicy } from './proof/policy.ts';
import { recordProof } from './proof/replay.ts';
import { PROOF_OPTION_NAMES } from './proof/types.ts';
import { checkSignature } from './proof/signature.ts';
import type {
  Checked,
  PreparedProof,
  ProofExpectation,
  ProofVerifier,
  VerifiedProof,
  VerifyProofOptions,
} from './proof/types.ts';

export type {
  PreparedProof,
  ProofExpectation,
  ProofVerifier,
  VerifiedProof,
  VerifyProofOptions,
} from './proof/types.ts';

/** One proof being verified: what each check found. @internal */
interface ProofRun {
  readonly policy: ProofPolicy;
  readonly expect: ProofExpectation;
  /** The access token's hash when the caller has it (createDPoPAuth computes it once). */
  readonly tokenHash: string | Promise<string> | undefined;
  /** The `htu` this request's proofs carry (check 9). */
  readonly htu: string;
  readonly jws: CompactJws;
  entry: HeaderEntry | undefined;
  claims: ProofClaims | undefined;
  /** The clock, read once (ms). */
  nowMs: number;
  fresh: Freshness | undefined;
}

/** RFC 9449 §4.3 checks 3 to 12 after the compact form (2), in the order they run. */
const PROOF_CHECKS: readonly Step<ProofRun>[] = [
  header, // 4, 5, 7: typ, alg, crit, b64, jwk (cached by header segment)
  boundKey, // 12, the key: a proof by another key is refused before the signature
  signature, // 6 (with WebCrypto, the claims' checks run while it does)
  claims, // 3, 8, 9, 11: required claims, htm, htu, exp and nbf
  freshness, // 10, 11: nonce, iat window (§8, §11.1)
  ath, // 12, the token
];

/**
 * Checks a proof against its request, without recording it: RFC 9449 §4.3 checks 2 to 12.
 * Synchronous when every check is (node:crypto, a cached header, no server nonce).
 * `tokenHash`: the hash of `expect.accessToken`, if already computed. @internal
 */
export function checkProof(
  policy: ProofPolicy,
  proof: string,
  expect: ProofExpectation,
  tokenHash: string | Promise<string> | undefined,
): MaybePromise<Checked> {
  if (expect === null || typeof expect !== 'object')
    throw new DPoPConfigError('expect', 'must be an object');
  const run: ProofRun = {
    policy,
    expect,
    tokenHash,
    htu: expectedHtu(policy, expect.url),
    jws: splitCompact(policy, proof), // 2
    entry: undefined,
    claims: undefined,
    nowMs: 0,
    fresh: undefined,
  };
  const done = runSteps(PROOF_CHECKS, run);
  return isPromiseLike(done) ? done.then(checked) : checked(run);
}

/**
 * Builds a DPoP proof verifier (RFC 9449 §4.3). Options are validated here, once; the returned
 * function runs §4.3's checks (numbered as in the RFC; check 1, one `DPoP` header, is the
 * caller's: `createDPoPAuth`, `createTokenRequestVerifier`) in this order, so a rejected proof
 * never burns a `jti`:
 *
 * - 2. size (`maxProofLength`) and JWS compact form: three strict base64url segments;
 * - 4, 5, 7. header: a JSON object, `typ` `dpop+jwt` (or `application/dpop+jwt`), `alg`
 *   allowed (asymmetric only), no `crit` or `b64`, `jwk` a public key of the type `alg` needs
 *   (no private members, valid coordinates, RSA 2048 to `maxRsaBits` bits with e = 65537) that
 *   the platform imports (off-curve points are refused);
 * - 12 (the key). `jkt` against `cnf.jkt` / `dpop_jkt`, constant time, before the expensive
 *   signature check;
 * - 6. signature;
 * - 3, 8, 9, 11. claims: `htm` exact, `htu` equal after {@link normalizeHtu} on both sides,
 *   `jti` present and bounded, `iat` a number, `exp`/`nbf` when present;
 * - 10, 11. `nonce` a string (checked when nonces are configured), `iat` within
 *   `[now - maxAge, now + clockTolerance]`, or, with a valid server nonce (which bounds
 *   freshness), within `nonceIatSkew` (5 min) of now;
 * - 12 (the token). `ath` against the access token, compared as strings in constant time;
 * - §11.1. the replay store, last: key = SHA-256(jkt, jti), kept exactly as long as the proof
 *   could be accepted again: until its nonce expires, or else until
 *   `iat + maxAge + clockTolerance`.
 *
 * Imported keys are cached by header (bounded LRU), and on Node signatures are checked with
 * `node:crypto`. Every failure is a {@link DPoPError}; messages never contain the proof.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export function createProofVerifier(options: VerifyProofOptions): ProofVerifier {
  if (options !== null && typeof options === 'object')
    rejectUnknownOptions(options, PROOF_OPTION_NAMES, 'createProofVerifier');
  return proofVerifierOf(compileProofPolicy(options));
}

/** The verifier of a compiled policy (whose options were checked by the caller). @internal */
export function proofVerifierOf(policy: ProofPolicy): ProofVerifier {
  const verify = (proof: string, expect: ProofExpectation): Promise<VerifiedProof> =>
    settle(() => checkAndRecordProof(policy, proof, expect, undefined));
  return Object.assign(verify, {
    prepare: (proof: string, expect: ProofExpectation) =>
      prepareProof(policy, proof, expect, undefined),
  });
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

/** Where the replay store's answer time is written, when the caller measures it. @internal */
export interface StoreTiming {
  storeMs: number | undefined;
}

/**
 * Checks a proof and records it (§11.1); a promise only when a step needs one. With `timing`,
 * the store's answer time goes there. @internal
 */
export function checkAndRecordProof(
  policy: ProofPolicy,
  proof: string,
  expect: ProofExpectation,
  tokenHash: string | Promise<string> | undefined,
  timing?: StoreTiming,
): MaybePromise<VerifiedProof> {
  const found = checkProof(policy, proof, expect, tokenHash);
  if (isPromiseLike(found)) return found.then((c) => commitChecked(policy, c, timing));
  return commitChecked(policy, found, timing);
}

/** Checks a proof; `commit` records it (once; later calls return the same promise). @internal */
export async function prepareProof(
  policy: ProofPolicy,
  proof: string,
  expect: ProofExpectation,
  tokenHash: string | Promise<string> | undefined,
): Promise<PreparedProof> {
  const found = await checkProof(policy, proof, expect, tokenHash);
  let committed: Promise<void> | undefined;
  return {
    proof: found.result,
    commit: (options) => (committed ??= settle(() => recordProof(policy, found, options?.account))),
  };
}

function header(run: ProofRun): void | Promise<void> {
  const { cached } = run.jws;
  return keep(run, 'entry', cached ?? checkHeader(run.policy, run.jws.header));
}

function boundKey(run: ProofRun): void {
  if (run.expect.jkt !== undefined) checkKeyBinding(run.entry!.jkt, run.expect.jkt);
}

/**
 * Check 6. With WebCrypto the claims (3, 8, 9, 11) are checked while the signature is, where
 * the runtime checks it on another thread (Deno: their cost was hidden entirely, Bun: in
 * part; Chromium showed no difference). A claim's refusal waits for the signature's answer, so
 * a proof failing both is refused for its signature, as in sequence.
 */
function signature(run: ProofRun): void | Promise<void> {
  const pending = checkSignature(run.entry!, run.jws);
  if (pending === undefined) return;
  try {
    claims(run);
  } catch (refusal) {
    return pending.then(() => {
      throw refusal;
    });
  }
  return pending;
}

function claims(run: ProofRun): void {
  if (run.claims !== undefined) return; // checked while the signature was (see signature)
  const { policy } = run;
  run.claims = checkClaims(policy, run.jws.payload, run.expect.method, run.htu);
  run.nowMs = policy.now();
  checkValidity(policy, run.claims, run.nowMs / 1000);
}

function freshness(run: ProofRun): void | Promise<void> {
  return keep(run, 'fresh', checkFreshness(run.policy, run.claims!, run.expect, run.nowMs));
}

function ath(run: ProofRun): void | Promise<void> {
  const { accessToken } = run.expect;
  if (accessToken !== undefined) return checkAth(run.claims!.ath, accessToken, run.tokenHash);
}

/** The proof that passed checks 2 to 12, ready for the replay store. */
function checked(run: ProofRun): Checked {
  const entry = run.entry!;
  const result: VerifiedProof = {
    jkt: entry.jkt,
    jwk: entry.jwk,
    alg: entry.alg,
    claims: run.claims!,
  };
  const { expiresAt, nextNonce } = run.fresh!;
  if (nextNonce !== undefined) result.nextNonce = nextNonce;
  return { result, jti: run.claims!.jti, expiresAt, account: run.expect.account };
}

function commitChecked(
  policy: ProofPolicy,
  found: Checked,
  timing: StoreTiming | undefined,
): MaybePromise<VerifiedProof> {
  if (timing !== undefined) return timedCommit(policy, found, timing);
  const recorded = recordProof(policy, found);
  return recorded === undefined ? found.result : recorded.then(() => found.result);
}

/** {@link commitChecked}, writing the store's answer time (refused or not) to `timing`. */
function timedCommit(
  policy: ProofPolicy,
  found: Checked,
  timing: StoreTiming,
): MaybePromise<VerifiedProof> {
  if (policy.replay === false) return found.result;
  const started = performance.now();
  let recorded: void | Promise<void>;
  try {
    recorded = recordProof(policy, found);
  } finally {
    timing.storeMs = performance.now() - started;
  }
  if (recorded === undefined) return found.result;
  return recorded
    .finally(() => (timing.storeMs = performance.now() - started))
    .then(() => found.result);
}
