/**
 * The internal types of request authentication (`createDPoPAuth`): its compiled policy and the
 * record of one request.
 * @module
 */
import type { TokenClaims, TokenValidator } from '../access-token.ts';
import type { ChallengeConfig } from '../challenge.ts';
import type { ProofPolicy } from '../proof/policy.ts';
import type { PreparedProof, VerifiedProof } from '../proof/types.ts';
import type { RequestLike } from '../request.ts';
import type { AuthOutcome, CertificateThumbprintSource } from '../auth.ts';

/** The options of `createDPoPAuth` once validated. @internal */
export interface AuthPolicy {
  readonly proof: ProofPolicy;
  readonly validateToken: TokenValidator;
  readonly resolveUrl: (request: RequestLike) => string;
  readonly requireNonce: ((request: RequestLike) => boolean) | undefined;
  readonly certificate: CertificateThumbprintSource | undefined;
  readonly onResult: ((outcome: AuthOutcome) => void) | undefined;
  /** The replay store's fill level (0 to 1), when it reports one. */
  readonly replayFill: () => number | undefined;
  /** Unbound tokens on the Bearer scheme (mixed mode). */
  readonly allowUnboundBearer: boolean;
  /** The Bearer scheme is open: to certificate-bound tokens, or by choice to unbound ones. */
  readonly bearerScheme: boolean;
  readonly challenge: ChallengeConfig;
  readonly maxTokenLength: number;
  /** `requiredScopes`, validated (empty: no scope is required). */
  readonly requiredScopes: readonly string[];
  /** `explain: 'log'`: log each refusal (fingerprints only). */
  readonly explain: boolean;
  /** An adapter's own acceptance rule on the claims (throws a `DPoPError`), run last. */
  readonly check?: ((claims: TokenClaims) => void) | undefined;
}

/**
 * Where a request's verification stands, for the failure it may end with: an error that is
 * not a `DPoPError` is a refused token, an invalid proof or an unusable certificate while
 * those are checked, else an internal error. @internal
 */
export type AuthPhase = 'request' | 'token' | 'proof' | 'certificate';

/** One request being authenticated: what each step found. @internal */
export interface AuthRun {
  readonly policy: AuthPolicy;
  readonly request: RequestLike;
  /** `performance.now()` at the start, when `onResult` is set. */
  readonly start: number;
  phase: AuthPhase;
  scheme: 'DPoP' | 'Bearer' | undefined;
  token: string;
  /** The token's hash: the validated-token cache key and the proof's `ath` (computed once). */
  tokenHash: string | Promise<string>;
  proof: string | undefined;
  /** The expected `htu` source (DPoP only). */
  url: string;
  requireNonce: boolean | undefined;
  claims: TokenClaims | undefined;
  /** `cnf.jkt` and `cnf["x5t#S256"]` once their form is checked. */
  jkt: string | undefined;
  x5t: string | undefined;
  /** The presented certificate's thumbprint, as the source reported it. */
  presented: unknown;
  /** With a remote validator: the proof checked before the token, recorded after. */
  prepared: PreparedProof | undefined;
  verified: VerifiedProof | undefined;
  bound: Array<'jkt' | 'x5t#S256'>;
  /** Ms the replay store took (measured only when `onResult` is set). */
  storeMs: number | undefined;
}
