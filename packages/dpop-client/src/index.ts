/**
 * `@popkit/dpop-client`: DPoP (RFC 9449) for clients. Zero dependencies; WebCrypto everywhere,
 * node:crypto on Node.
 * @packageDocumentation
 */
export { SUPPORTED_ALGORITHMS } from './algorithms.ts';
export type { DPoPAlgorithm } from './algorithms.ts';
export { parseWWWAuthenticate } from './challenge.ts';
export type { AuthChallenge } from './challenge.ts';
export { DPoPArgumentError, DPoPClientError } from './errors.ts';
export type { DPoPClientErrorCode } from './errors.ts';
export { serverAnswer } from './server-answer.ts';
export type { DPoPServerAnswer } from './server-answer.ts';
export { createDPoPFetch } from './fetch.ts';
export type { DPoPFetch, DPoPFetchOptions, DPoPRequestInit, FetchLike } from './fetch.ts';
export { MAX_HTU_LENGTH, normalizeHtu, wireHtu } from './htu.ts';
export type { PublicJwk } from './jwk.ts';
export { generateKeyPair, publicJwk, thumbprint } from './keys.ts';
export type { GenerateKeyPairOptions } from './keys.ts';
export { MemoryNonceStore } from './nonce-store.ts';
export type { NonceStore } from './nonce-store.ts';
export { MAX_NONCE_LENGTH, accessTokenHash, createProof } from './proof.ts';
export type { ProofOptions, ProofRequest } from './proof.ts';
export type { DPoPFetchEvent, DPoPSessionOptions } from './session.ts';
export { derToJoseSignature } from './signer.ts';
export type { DPoPKey, DPoPSigner } from './signer.ts';
export type { OnTokenExpired, TokenExpiredContext } from './token-expiry.ts';
