/**
 * The names popkit's telemetry records, and the closed sets its attribute values come from.
 * Every attribute value is one of a fixed, small set known here: nothing a client sends (a
 * path, a `jti`, a header, a `kid`, an unknown `alg`) can become a value, so no request can
 * add a time series.
 * @module
 */
import { PROOF_ALGORITHMS } from '../algorithms.ts';
import { REFUSALS } from '../errors.ts';

/** Instrument names (OpenTelemetry); Prometheus spells them with `_` and a unit suffix. */
export const METRIC = {
  duration: 'dpop.verification.duration',
  replays: 'dpop.replays',
  signatureFailures: 'dpop.signature.failures',
  nonceChallenges: 'dpop.nonce.challenges',
  clockSkew: 'dpop.proof.clock_skew',
  proofSize: 'dpop.proof.size',
  tokenSize: 'dpop.access_token.size',
  storeDuration: 'dpop.replay_store.duration',
  storeFill: 'dpop.replay_store.fill',
  introspectionDuration: 'dpop.introspection.duration',
  jwksDuration: 'dpop.jwks.duration',
} as const;

/** Attribute keys. */
export const ATTR = {
  outcome: 'dpop.outcome',
  reason: 'dpop.reason',
  scheme: 'dpop.scheme',
  alg: 'dpop.alg',
  endpoint: 'dpop.endpoint',
  signatureOf: 'dpop.signature.of',
  introspectionResult: 'dpop.introspection.result',
  jwksResult: 'dpop.jwks.result',
  jwksTrigger: 'dpop.jwks.trigger',
  clockDirection: 'dpop.clock.direction',
} as const;

/** The value of an attribute whose input was outside its closed set. */
export const OTHER = '_OTHER';

/** `dpop.reason`: the verifier's refusal reasons, else {@link OTHER}. */
export const REASONS: ReadonlySet<string> = new Set(Object.keys(REFUSALS));
/** `dpop.alg`: the algorithms a proof can be verified with, else {@link OTHER}. */
export const ALGS: ReadonlySet<string> = new Set(PROOF_ALGORITHMS);
/** `dpop.outcome`: a 503 (`server_error`) is the server's `error`, not the client's refusal. */
export const OUTCOMES = ['accepted', 'rejected', 'error'] as const;
/** `dpop.scheme`: `none` when the request named no scheme popkit reads. */
export const SCHEMES = ['DPoP', 'Bearer', 'none'] as const;
/** `dpop.endpoint`. */
export const ENDPOINTS = ['resource', 'token'] as const;

/** Seconds: a verification takes ~0.1 ms; 50 ms is a common p95 objective. */
export const DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
/**
 * Seconds between `iat` and the server clock, by `dpop.clock.direction` (OpenTelemetry
 * histograms take no negative values). 60 s is the default `maxAge`, 300 s `nonceIatSkew`.
 */
export const SKEW_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 86400];
/** Bytes: proofs are ~500-900 (RSA keys more), refused beyond 8192 by default. */
export const PROOF_SIZE_BUCKETS = [256, 512, 768, 1024, 1536, 2048, 4096, 8192, 16384];
/** Bytes: JWT access tokens grow with claims; gateways often refuse headers past 8-16 KiB. */
export const TOKEN_SIZE_BUCKETS = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];
/** Seconds: a memory store answers in µs, Redis or Postgres in a millisecond or so. */
export const STORE_BUCKETS = [
  0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];
/** Seconds: calls to the authorization server. */
export const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
