/**
 * `@popkit/dpop-verifier`: DPoP (RFC 9449) verification for resource servers and
 * authorization servers.
 * @packageDocumentation
 */
export { DEFAULT_ALGORITHMS, PROOF_ALGORITHMS } from './algorithms.ts';
export type { ProofAlgorithm } from './algorithms.ts';
export { DPOP_CORS_ALLOW_HEADERS, DPOP_CORS_EXPOSE_HEADERS, mergeExposeHeaders } from './cors.ts';
export { DPoPConfigError, DPoPError } from './errors.ts';
export type {
  DPoPErrorCode,
  DPoPErrorOptions,
  DPoPExplanation,
  DPoPRejectReason,
} from './errors.ts';
export { createNonceIssuer } from './nonce.ts';
export type { NonceCheck, NonceIssuer, NonceIssuerOptions } from './nonce.ts';
export { MemoryReplayStore } from './replay/memory.ts';
export type { MemoryReplayStoreOptions } from './replay/memory.ts';
export { ReplayStoreError } from './replay/types.ts';
export type { ReplayStore, ReplayStoreFailure, ReplayStoreStats } from './replay/types.ts';
export { createProofVerifier, verifyProof } from './verify-proof.ts';
export type {
  PreparedProof,
  ProofExpectation,
  ProofVerifier,
  VerifiedProof,
  VerifyProofOptions,
} from './verify-proof.ts';
export { createDPoPAuth } from './auth.ts';
export type {
  AuthOutcome,
  AuthResult,
  OutcomeDetails,
  CertificateThumbprintSource,
  DPoPAuth,
  DPoPAuthOptions,
} from './auth.ts';
export type {
  AccessTokenOption,
  AccessTokenValidator,
  IntrospectionOptions,
  JwtAccessTokenOptions,
  TokenClaims,
} from './access-token.ts';
export type { HeadersLike, PublicUrlOptions, RequestLike } from './request.ts';
export type { UpstreamEvent, UpstreamListener } from './upstream.ts';
export { createTokenRequestVerifier, verifyTokenRequest } from './token-request.ts';
export type {
  PreparedTokenRequest,
  TokenRequestContext,
  TokenRequestVerifier,
  TokenRequestOptions,
  TokenRequestResult,
} from './token-request.ts';
