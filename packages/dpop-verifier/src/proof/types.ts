import type { ProofAlgorithm } from '../algorithms.ts';
import type { NonceIssuer } from '../nonce.ts';
import type { OptionNames } from '../options.ts';
import type { ReplayStore } from '../replay/types.ts';

/**
 * The public types of the proof verifier (RFC 9449 §4.3).
 * @module
 */

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

/** The names of {@link VerifyProofOptions}, for the unknown-option check. @internal */
export const PROOF_OPTION_NAMES = {
  algorithms: true,
  maxAge: true,
  clockTolerance: true,
  replay: true,
  nonces: true,
  nonceIatSkew: true,
  requireNonce: true,
  maxProofLength: true,
  maxJtiLength: true,
  maxRsaBits: true,
  keyCacheSize: true,
  now: true,
} as const satisfies OptionNames<VerifyProofOptions>;

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

/**
 * A proof that passed RFC 9449 §4.3 checks 2 to 12, before the replay store (§11.1): what
 * `commit` records. @internal
 */
export interface Checked {
  result: VerifiedProof;
  jti: string;
  /** When the proof could no longer be accepted anyway: its replay entry lives until then. */
  expiresAt: number;
  account: string | undefined;
}
