/**
 * Request authentication at a resource server (RFC 9449 §7, RFC 8705 §3, RFC 6750): the
 * orchestrator and the public entry points. The checks live in `src/auth/` and `src/proof/`.
 * @module
 */
import type { AccessTokenOption, TokenClaims } from './access-token.ts';
import { accepted, refused } from './auth/answer.ts';
import { accountOf, checkCertificate, checkConfirmation } from './auth/confirmation.ts';
import { readCredentials } from './auth/credentials.ts';
import { compileAuthPolicy } from './auth/policy.ts';
import type { AuthPolicy, AuthRun } from './auth/types.ts';
import type { DPoPError, DPoPRejectReason } from './errors.ts';
import { refuse } from './errors.ts';
import { tokenScopes } from './auth/scopes.ts';
import type { MaybePromise, Step } from './maybe-async.ts';
import { isPromiseLike, keep, runSteps, settle } from './maybe-async.ts';
import type { OptionNames } from './options.ts';
import { checkKeyBinding } from './proof/binding.ts';
import { PROOF_OPTION_NAMES } from './proof/types.ts';
import type { ProofAlgorithm } from './algorithms.ts';
import type { PublicUrlOptions, RequestLike } from './request.ts';
import type { UpstreamListener } from './upstream.ts';
import { PUBLIC_URL_OPTION_NAMES } from './request.ts';
import type { ProofExpectation, VerifiedProof, VerifyProofOptions } from './verify-proof.ts';
import { prepareProof, checkAndRecordProof } from './verify-proof.ts';

/**
 * Builds the resource-server side of DPoP and certificate-bound tokens (RFC 9449 §7, RFC 8705
 * §3, RFC 6750). Options are validated here, once. Per request it enforces:
 *
 * - exactly one `Authorization` header (`DPoP` or, with `allowBearer`, `Bearer`; any case) and
 *   at most one `DPoP` header (duplicates, joined or not, are refused);
 * - the access token through `accessToken` (hook, RFC 9068 JWT via jose, or RFC 7662);
 * - every `cnf` member: `jkt` needs the `DPoP` scheme and a proof by that key (a bound token
 *   sent as `Bearer` is a downgrade and is refused); `x5t#S256` needs the presented certificate
 *   (`certificate`); any other member is refused; a token bound both ways needs both;
 * - the proof: every RFC 9449 §4.3 check, `ath`, nonces, replay (see `createProofVerifier`).
 *
 * The steps run in this order, each only once the ones before it passed (see
 * `authenticate`): the credentials (cheap), the access token, its `cnf`, the certificate,
 * the proof. With a remote validator (introspection) the proof is checked first and recorded
 * last, so each outbound call needs a valid fresh proof.
 *
 * Failures are {@link DPoPError}s carrying the 401/400/503 status and the exact
 * `WWW-Authenticate` (`DPoP error=…, error_description=…, algs=…`, plus `Bearer` in mixed mode)
 * and `DPoP-Nonce` headers. Adapters for Express, Fastify and Hono only serialise them.
 *
 * @example
 * ```ts
 * const auth = createDPoPAuth({
 *   accessToken: { issuer: 'https://as.example.com', audience: 'https://api.example.com', jwks: new URL('https://as.example.com/jwks') },
 *   publicUrl: 'https://api.example.com',
 *   replay: new MemoryReplayStore(),
 *   nonces: createNonceIssuer({ secret: process.env.NONCE_SECRET! }),
 * });
 * const { claims } = await auth.verify(request);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export function createDPoPAuth(options: DPoPAuthOptions): DPoPAuth {
  const run = compileDPoPAuth(options);
  const auth: DPoPAuth = { verify: (request) => settle(() => run(request)) };
  compiled.set(auth, run);
  return auth;
}

/** The steps after the credentials, in order. */
const LOCAL: readonly Step<AuthRun>[] = [
  token, // the access token (a cached one: synchronous)
  confirmation, // its cnf against the scheme (RFC 9449 §6.1, §7; RFC 8705 §3)
  certificate, // the presented client certificate (RFC 8705 §3), when cnf names one
  certificateMatch,
  proof, // RFC 9449 §4.3 checks 2 to 12 and the replay store (§11.1), for DPoP
  scopes, // `requiredScopes` (RFC 6750 §3.1 insufficient_scope), once the request is authentic
  callerCheck, // an adapter's own rule (the MCP SDK's), so the verdict reported is the answer
];
/** The same with a remote validator: a call costs more than a proof signature. */
const REMOTE: readonly Step<AuthRun>[] = [
  proofFirst, // RFC 9449 §4.3 checks 2 to 12 (`ath` for this very token), nothing recorded
  token,
  confirmation,
  certificate,
  certificateMatch,
  proof, // check 12 (the key against cnf.jkt), then the replay store (§11.1)
  scopes,
  callerCheck,
];

/**
 * Authenticates one request, returning a promise only when a step needs one (a token not yet
 * validated, a remote validator, WebCrypto, nonces, an asynchronous store): on Node with the
 * memory store a request with a known token is verified without a promise or a closure. Every
 * failure is mapped once, by {@link refused}. @internal
 */
export function authenticate(policy: AuthPolicy, request: RequestLike): MaybePromise<AuthResult> {
  const run = newRun(policy, request);
  let done: MaybePromise<AuthRun>;
  try {
    readCredentials(run); // RFC 6750 §2, RFC 9449 §4.3 check 1
    const remote = run.scheme === 'DPoP' && policy.validateToken.remote === true;
    done = runSteps(remote ? REMOTE : LOCAL, run);
  } catch (e) {
    throw refused(e, run);
  }
  if (!isPromiseLike(done)) return accepted(run);
  return done.then(accepted, (e: unknown) => {
    throw refused(e, run);
  });
}

/**
 * Validates the options once; the per-request check (see {@link authenticate}). `check`: an
 * adapter's own acceptance rule on the token's claims (throws a `DPoPError`), run last, so a
 * request it refuses is reported to `onResult` as refused. @internal
 */
export function compileDPoPAuth(
  options: DPoPAuthOptions,
  check?: (claims: TokenClaims) => void,
): Authenticate {
  const compiled = compileAuthPolicy(options);
  const policy = check === undefined ? compiled : { ...compiled, check };
  return (request) => authenticate(policy, request);
}

/** Authenticates one request, returning a promise only when a step needs one. @internal */
export type Authenticate = (request: RequestLike) => MaybePromise<AuthResult>;

const compiled = new WeakMap<DPoPAuth, Authenticate>();

/**
 * The synchronous-when-possible form of a verifier built by {@link createDPoPAuth} (adapters
 * call it so that a request verified without any asynchronous step continues at once), or
 * `undefined` for another `DPoPAuth` implementation. @internal
 */
export function authenticatorOf(auth: DPoPAuth): Authenticate | undefined {
  return compiled.get(auth);
}

/** A fresh per-request record (`popkit explain` starts its walk from one too). @internal */
export function newRun(policy: AuthPolicy, request: RequestLike): AuthRun {
  return {
    policy,
    request,
    start: policy.onResult ? performance.now() : 0,
    phase: 'request',
    scheme: undefined,
    token: '',
    tokenHash: '',
    proof: undefined,
    url: '',
    requireNonce: undefined,
    claims: undefined,
    jkt: undefined,
    x5t: undefined,
    presented: undefined,
    prepared: undefined,
    verified: undefined,
    bound: [],
    storeMs: undefined,
  };
}

/** What the proof must match. */
function expectation(run: AuthRun, jkt: string | undefined): ProofExpectation {
  return {
    method: run.request.method,
    url: run.url,
    accessToken: run.token,
    jkt,
    requireNonce: run.requireNonce,
    account: run.claims === undefined ? undefined : accountOf(run.claims),
  };
}

function token(run: AuthRun): void | Promise<void> {
  run.phase = 'token';
  return keep(run, 'claims', run.policy.validateToken(run.token, run.request, run.tokenHash));
}

function confirmation(run: AuthRun): void {
  run.phase = 'request';
  const { jkt, x5t } = checkConfirmation(run.policy, run.scheme!, run.claims!);
  run.jkt = jkt;
  run.x5t = x5t;
}

function certificate(run: AuthRun): void | Promise<void> {
  const source = run.policy.certificate;
  if (run.x5t === undefined || source === undefined) return;
  run.phase = 'certificate';
  return keep(run, 'presented', source(run.request));
}

function certificateMatch(run: AuthRun): void {
  run.phase = 'request';
  if (run.x5t === undefined) return;
  checkCertificate(run.presented, run.x5t);
  run.bound.push('x5t#S256');
}

function proofFirst(run: AuthRun): void | Promise<void> {
  run.phase = 'proof';
  const { policy, tokenHash } = run;
  return keep(
    run,
    'prepared',
    prepareProof(policy.proof, run.proof!, expectation(run, undefined), tokenHash),
  );
}

function proof(run: AuthRun): void | Promise<void> {
  if (run.scheme !== 'DPoP') return;
  run.phase = 'proof';
  const { policy, prepared } = run;
  if (prepared === undefined) {
    const proven = checkAndRecordProof(
      policy.proof,
      run.proof!,
      expectation(run, run.jkt),
      run.tokenHash,
      policy.onResult === undefined ? undefined : run,
    );
    return keep(run, 'verified', proven);
  }
  checkKeyBinding(prepared.proof.jkt, run.jkt);
  const account = accountOf(run.claims!);
  let recorded = prepared.commit({ account });
  if (policy.onResult !== undefined) {
    const started = performance.now();
    recorded = recorded.finally(() => (run.storeMs = performance.now() - started));
  }
  return keep(
    run,
    'verified',
    recorded.then(() => prepared.proof),
  );
}

/**
 * RFC 6750 §3.1: a token without every scope in `requiredScopes` is refused 403
 * `insufficient_scope` (the challenge names the scopes, for step-up), after the proof was
 * checked and recorded, so only the key holder learns it. The nonce to move to, if any, goes
 * along.
 */
function scopes(run: AuthRun): void {
  const required = run.policy.requiredScopes;
  if (required.length === 0) return;
  const held = tokenScopes(run.claims!);
  if (required.every((scope) => held.includes(scope))) return;
  throw refuse('insufficient_scope'); // (with the nonce to move to: see `refused`)
}

/** The adapter's own rule (see {@link compileDPoPAuth}); `refused` adds the nonce to move to. */
function callerCheck(run: AuthRun): void {
  run.policy.check?.(run.claims!);
}

/**
 * Returns the `x5t#S256` thumbprint (base64url SHA-256 of the DER) of the TLS client certificate
 * presented with this request, or `undefined` when there is none. `@popkit/mtls-binding`
 * provides it from a TLS socket or a trusted proxy header.
 */
export type CertificateThumbprintSource = (
  request: RequestLike,
) => string | undefined | Promise<string | undefined>;

/**
 * What every outcome carries besides its verdict: numbers and closed sets only, never a token,
 * proof, key, URL or claim, so each can be a metric or span attribute as it is.
 */
export interface OutcomeDetails {
  /** A resource server's request (`createDPoPAuth`) or a token request (`createTokenRequestVerifier`). */
  endpoint: 'resource' | 'token';
  /** Time spent verifying, in ms. */
  durationMs: number;
  /** The proof's `alg` (one of `algorithms`), once the proof passed its checks. */
  alg?: ProofAlgorithm;
  /**
   * The proof's `iat` minus the server clock, in seconds (negative: the client clock is
   * behind), for accepted proofs and those refused as not fresh (`iat_too_old`, `iat_in_future`,
   * `iat_before_restart`): clock-skew incidents show here first.
   */
  iatSkew?: number;
  /** Characters of the `DPoP` header received (refused beyond `maxProofLength`). */
  proofLength?: number;
  /** Characters of the access token received (refused beyond `maxTokenLength`). */
  tokenLength?: number;
  /** Ms the replay store took to record the proof (§11.1), when it was asked. */
  storeMs?: number;
  /**
   * The replay store's fill level (0 to 1) when the store reports it (`MemoryReplayStore`
   * does); refusals by the store arrive as `reason` `replay_store_full` (full) or
   * `replay_over_share` (that account holds more than its fair share).
   */
  replayFill?: number;
}

/**
 * What `onResult` receives, once per request: the verdict and its {@link OutcomeDetails}. A
 * `rejected` outcome with `status` 503 is the server's failure (`server_error`: the replay
 * store, the JWKS or introspection could not answer), not the client's.
 */
export type AuthOutcome =
  | ({
      outcome: 'accepted';
      scheme: 'DPoP' | 'Bearer';
      bound: Array<'jkt' | 'x5t#S256'>;
    } & OutcomeDetails)
  | ({
      outcome: 'rejected';
      code: DPoPError['code'];
      reason: DPoPRejectReason;
      status: number;
      scheme?: 'DPoP' | 'Bearer';
    } & OutcomeDetails);

/** Options of {@link createDPoPAuth}. */
export interface DPoPAuthOptions
  extends Omit<VerifyProofOptions, 'requireNonce'>, PublicUrlOptions {
  /** How access tokens are validated: a function, RFC 9068 JWT options, or RFC 7662 introspection. */
  accessToken: AccessTokenOption;
  /**
   * Also accept **unbound** bearer tokens on the `Bearer` scheme (mixed mode). Default false:
   * sender-constrained only ("DPoP or mTLS, nothing else", the FAPI 2.0 resource-server
   * policy): `cnf.jkt` tokens with a DPoP proof, and, when `certificate` is set,
   * `cnf["x5t#S256"]` tokens on `Bearer` with their certificate (RFC 8705 §3).
   */
  allowUnboundBearer?: boolean;
  /** @deprecated The former name of `allowUnboundBearer` (same meaning). */
  allowBearer?: boolean;
  /** Demand a server nonce: always, never, or per request. Default: true when `nonces` is set. */
  requireNonce?: boolean | ((request: RequestLike) => boolean);
  /** The presented client certificate's thumbprint, for `cnf["x5t#S256"]` tokens (RFC 8705). */
  certificate?: CertificateThumbprintSource;
  /**
   * Called once per request with the typed outcome, for metrics (`dpopTelemetry()` from
   * `@popkit/dpop-verifier/otel` gives one). What it throws is ignored.
   */
  onResult?: (outcome: AuthOutcome) => void;
  /**
   * Called once per call to the authorization server (a JWKS fetch, an introspection call)
   * with what it was for, how it ended and how long it took. What it throws is ignored.
   */
  onUpstream?: UpstreamListener;
  /** `realm` of the challenges. */
  realm?: string;
  /**
   * Scopes every token must hold (its `scope` claim, else `scp`). A token without them is
   * refused 403 `insufficient_scope`, once the proof was checked; every challenge names them
   * (`scope="…"`, RFC 6750 §3), so a client can ask for them (step-up).
   */
  requiredScopes?: readonly string[];
  /**
   * RFC 9728 §5.1: the URL of this resource's protected-resource metadata, sent as
   * `resource_metadata="…"` on every challenge (MCP clients find the authorization server there).
   */
  resourceMetadata?: string;
  /** Longest access token accepted. Default 16384. */
  maxTokenLength?: number;
  /**
   * `'log'`: one `console.warn` line per refused request with the failing RFC 9449 §4.3 check
   * and reason, and fingerprints only (hash prefixes of the proof and token, the `cnf.jkt`
   * thumbprint; never a token, proof or key), to run `popkit explain` (`@popkit/explain`) on.
   * Default `false`.
   */
  explain?: 'log' | false;
}

/** The names of {@link DPoPAuthOptions}, for the unknown-option check. @internal */
export const AUTH_OPTION_NAMES = {
  ...PROOF_OPTION_NAMES,
  ...PUBLIC_URL_OPTION_NAMES,
  accessToken: true,
  allowUnboundBearer: true,
  allowBearer: true,
  requireNonce: true,
  certificate: true,
  onResult: true,
  onUpstream: true,
  realm: true,
  requiredScopes: true,
  resourceMetadata: true,
  maxTokenLength: true,
  explain: true,
} as const satisfies OptionNames<DPoPAuthOptions>;

/** A request that passed authentication. */
export interface AuthResult {
  /** The access token (keep it out of logs). */
  token: string;
  claims: TokenClaims;
  scheme: 'DPoP' | 'Bearer';
  /** Thumbprint of the proof key, for DPoP. */
  jkt?: string;
  proof?: VerifiedProof;
  /** Headers to add to the response (`DPoP-Nonce` when the client should move to a new one). */
  headers: Record<string, string>;
  /**
   * The token's client: `client_id`, else `azp`, else `''`. With `scopes` and `expiresAt`, the
   * members of the MCP SDK's `AuthInfo`, so a result can be handed to its transports as is.
   */
  clientId: string;
  /** The token's scopes: its `scope` claim (space-separated), else `scp`. */
  scopes: string[];
  /** The token's `exp` (seconds since the epoch), when it has one. */
  expiresAt?: number;
}

/** A resource-server verifier built by {@link createDPoPAuth}. */
export interface DPoPAuth {
  /** Authenticates one request; throws {@link DPoPError} with ready `status` and `headers`. */
  verify(request: RequestLike): Promise<AuthResult>;
}
