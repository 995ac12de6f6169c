/**
 * `@popkit/dpop-verifier/internal-checks`: the check modules the verifier runs, one by one, for
 * `@popkit/explain` (which reports every RFC 9449 §4.3 check with the same code that decides
 * the verdict, so an explanation can never disagree with it). **Internal**: no semver promise;
 * applications use `createDPoPAuth`, `createProofVerifier` or `createTokenRequestVerifier`.
 * @internal
 * @packageDocumentation
 */
export { checkAth, checkKeyBinding } from './binding.ts';
export type { ProofClaims } from './claims.ts';
export { checkClaims, checkValidity, expectedHtu } from './claims.ts';
export type { CompactJws } from './compact.ts';
export { splitCompact } from './compact.ts';
export { dpopHeader } from './field.ts';
export type { Freshness } from './freshness.ts';
export { checkFreshness } from './freshness.ts';
export { checkHeader } from './header.ts';
export { parseJsonObject } from './json.ts';
export type { HeaderEntry, ProofPolicy } from './policy.ts';
export { compileProofPolicy } from './policy.ts';
export { recordProof } from './replay.ts';
export { checkSignature } from './signature.ts';
export type { Checked, ProofExpectation, VerifyProofOptions } from './types.ts';
export { checkCertificate, checkConfirmation } from '../auth/confirmation.ts';
export type { Confirmation } from '../auth/confirmation.ts';
export { readCredentials } from '../auth/credentials.ts';
export { newRun } from '../auth.ts';
export { compileAuthPolicy } from '../auth/policy.ts';
export { tokenScopes } from '../auth/scopes.ts';
export type { AuthPolicy, AuthRun } from '../auth/types.ts';
export { jwtRefusal } from '../access-token/jwt.ts';
export { DPoPError, REFUSALS, refuse } from '../errors.ts';
export type { DPoPRejectReason } from '../errors.ts';
export { accessTokenSha256 } from '../token-hash.ts';
