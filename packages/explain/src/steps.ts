/**
 * The checks an explanation reports (RFC 9449 §4.3's twelve, numbered as in the RFC, and the
 * token binding checks), and the one-sentence fix for every refusal reason.
 * @module
 */
import type { DPoPRejectReason } from '@popkit/dpop-verifier/internal-checks';
import { REFUSALS } from '@popkit/dpop-verifier/internal-checks';

/** A §4.3 check number, or a binding check. */
export type StepId =
  | 'authorization'
  | 'token'
  | 'scheme'
  | 'certificate'
  | 1
  | 2
  | 3
  | 4
  | 5
  | 6
  | 7
  | 8
  | 9
  | 10
  | 11
  | 12
  | 'jkt'
  | 'scope'
  | 'replay';

/** The order steps are reported in. */
export const STEP_ORDER: readonly StepId[] = [
  'authorization',
  1,
  'token',
  'scheme',
  'certificate',
  2,
  3,
  4,
  5,
  6,
  7,
  8,
  9,
  10,
  11,
  12,
  'jkt',
  'scope',
  'replay',
];

export const STEP_NAMES: { readonly [S in StepId]: string } = {
  authorization: 'one Authorization header with the DPoP (or Bearer) scheme and a token',
  1: 'not more than one DPoP header field',
  token: 'the access token (decoded; its signature only with a JWKS)',
  scheme: 'the token binding matches the scheme (DPoP-bound tokens on DPoP, no downgrade)',
  certificate: 'the client certificate is the one the token is bound to (RFC 8705 cnf x5t#S256)',
  2: 'the DPoP header value is a single well-formed JWT (no crit, no b64)',
  3: 'all required claims are present (jti, iat; htm and htu below)',
  4: 'typ is dpop+jwt',
  5: 'alg is an asymmetric algorithm the server allows',
  6: 'the signature verifies with the jwk header key',
  7: 'jwk is a public key (no private members) of the type alg needs',
  8: 'htm matches the request method',
  9: 'htu matches the request URL (without query and fragment)',
  10: 'nonce matches the server-provided nonce',
  11: 'the proof is fresh: iat within the window, exp and nbf honoured',
  12: 'ath is the hash of the access token',
  jkt: 'the token cnf.jkt is the proof key (check 12, the key)',
  scope: 'the token holds the scopes the route requires (requiredScopes)',
  replay: 'the proof was not used before (§11.1 replay store)',
};

/** What a fix sentence may use. */
export interface FixContext {
  expected?: string | undefined;
  found?: string | undefined;
  [detail: string]: string | number | undefined;
}

type Fix = (c: FixContext) => string;

const FIXES: Partial<Record<DPoPRejectReason, Fix>> = {
  missing_authorization: () =>
    'send the access token as `Authorization: DPoP <token>` (the scheme is DPoP, not Bearer, for a DPoP-bound token)',
  multiple_authorization: () =>
    'send exactly one Authorization header: a proxy or client library may be adding a second one',
  malformed_authorization: () =>
    'the Authorization value must be `DPoP <token>` with the token in token68 form (no quotes, no spaces inside)',
  token_in_query: () => 'send the token only in the Authorization header, never as ?access_token=',
  token_in_body: () => 'send the token only in the Authorization header, never in a form body',
  invalid_url: (c) =>
    `the server cannot use ${c.found} as a request URL: check the URL, or set \`publicUrl\` on the server`,
  invalid_host: () =>
    'the Host the server saw is not in `allowedHosts`: add it there, or set `publicUrl` on the server',
  invalid_path: () =>
    'the request path contains dot segments or backslashes: send the normalised path',
  missing_proof: () =>
    'add a `DPoP` header with a proof signed for this request (createDPoPFetch does it for every request)',
  multiple_proofs: () =>
    'send exactly one DPoP header: something (a retry wrapper, a proxy) adds a second proof, or joins two with a comma',
  proof_too_long: (c) =>
    `the proof is ${c.length} characters and the server accepts at most ${c.max}: drop the extra claims or header members, or raise \`maxProofLength\` on the server`,
  proof_malformed: () =>
    'the DPoP header must hold the compact JWS itself (header.payload.signature, base64url without padding, JSON objects inside): not a quoted, URL-encoded or truncated value',
  typ: (c) =>
    `the proof header has typ ${c.found}: sign it with \`typ: "dpop+jwt"\` (popkit's createProof always does)`,
  alg: (c) =>
    `the proof is signed with ${c.found}, which the server does not allow: sign with one of ${c.allowed}, or add the algorithm to the server's \`algorithms\``,
  crit: () => 'remove the `crit` header parameter: the server understands no critical extension',
  b64: () => 'remove the `b64` header parameter: DPoP proofs use the standard encoded payload',
  jwk: (c) =>
    `the jwk header must be the public key matching alg${c.why ? ` (${c.why})` : ''}: put only the public members of the key pair in it, never the private key`,
  signature: () =>
    'the signature does not verify with the jwk header key: sign with the private key of that very jwk, over the exact header and payload segments sent (nothing may re-encode the proof on the way)',
  htm: (c) =>
    `the proof signs method ${c.found} but the request is ${c.expected}: sign a new proof for each request, with its own method (a redirect or a retry may change it)`,
  htu: (c) =>
    `the proof signs \`${c.found}\` but the server expects \`${c.expected}\`: sign the URL as the client sends it, or set \`publicUrl\` on the server`,
  jti: () =>
    'give every proof a unique `jti` (a random string of up to 256 characters; createProof does)',
  iat_missing: () =>
    'add `iat`, the creation time in seconds since the epoch (a number, not a string or milliseconds)',
  iat_too_old: (c) =>
    `\`iat\` is ${c.delta} s before the server's time (at most ${c.maxAge} s accepted): sign a new proof for every request, and if the client clock is off, popkit's client learns the offset from \`Date\` if the server exposes it`,
  iat_in_future: (c) =>
    `\`iat\` is ${c.delta} s after the server's time (at most ${c.tolerance} s accepted): the client clock is ahead; popkit's client learns the offset from \`Date\` if the server exposes it`,
  iat_before_restart: () =>
    'the proof predates the server replay memory (a restart): sign a new proof',
  exp: (c) =>
    `the proof's \`exp\` passed ${c.delta ?? '?'} s ago: drop \`exp\` (iat bounds the proof) or sign a new proof per request`,
  nbf: (c) =>
    `the proof's \`nbf\` is ${c.delta ?? '?'} s after the server's time: drop \`nbf\`, or fix the client clock`,
  nonce_malformed: () => 'the `nonce` claim must be the string the server sent in `DPoP-Nonce`',
  nonce_missing: () =>
    "the server requires a nonce: retry with the `DPoP-Nonce` value of the 401 in the proof's `nonce` claim (createDPoPFetch does this once by itself)",
  nonce_invalid: () =>
    'the nonce is not the current one: use the latest `DPoP-Nonce` the server sent (nonces expire; keep one per server)',
  ath_missing: () =>
    "a proof sent with an access token must carry `ath`, the base64url SHA-256 of that token: pass the token to createProof's `accessToken`",
  ath_mismatch: () =>
    '`ath` is the hash of another token (often the old one, after a refresh): sign the proof with the token you send, after the refresh',
  jkt_mismatch: (c) =>
    `the token is bound to key ${c.expected} but the proof is signed by key ${c.found}: sign with the key the token was issued to (the one sent to the token endpoint), or get a new token for this key`,
  replay: () => 'sign a new proof for every request, retries included',
  token_expired: (c) =>
    `the access token expired${c.ago === undefined ? '' : ` ${c.ago} s ago`}: refresh it (and sign the proof's \`ath\` for the new token)`,
  token_not_yet_valid: () =>
    'the access token is not valid yet: the authorization server clock is ahead of this server',
  token_signature: () =>
    "the token's signature does not verify with the JWKS: it comes from another issuer or was altered",
  token_unknown_key: () =>
    "the token's `kid` is not in the JWKS: the issuer rotated keys, or it is another issuer's token",
  token_malformed: () =>
    'the access token is not a well-formed JWT with an exp: send the token exactly as the token endpoint returned it (not an ID token or a truncated value)',
  token_algorithm: (c) =>
    `the token is signed with ${c.found}, which the server does not allow: the authorization server must sign with one of the server's \`accessToken.algorithms\``,
  token_not_bound: () =>
    'the token has no `cnf.jkt`: request it with a DPoP proof at the token endpoint so the authorization server binds it to your key (or send it as Bearer where unbound tokens are allowed)',
  bearer_not_allowed: () =>
    'this server accepts sender-constrained tokens only: send `Authorization: DPoP <token>` with a DPoP proof',
  downgrade: () =>
    'the token is DPoP-bound (cnf.jkt): send it as `Authorization: DPoP <token>` with a DPoP proof, never as Bearer',
  cnf_malformed: () => "the token's `cnf` is malformed: cnf.jkt must be a 43-character thumbprint",
  cnf_unknown: () =>
    "the token's `cnf` has a member this server does not support (only jkt and x5t#S256): ask the authorization server for a DPoP- or certificate-bound token",
  token_audience: (c) =>
    `the token has ${c.found} but this API is ${c.expected}: request the token for this API (the \`resource\` or \`audience\` parameter at the token endpoint)`,
  token_issuer: (c) =>
    `the token has ${c.found} but the server trusts ${c.expected}: get the token from the authorization server this API trusts`,
  token_type: (c) =>
    `the token header has ${c.found}: send an RFC 9068 access token (typ at+jwt), not an ID token or another JWT`,
  token_inactive: () =>
    'the authorization server says the token is not active (revoked or expired): get a new one',
  certificate_missing: () =>
    'the token is bound to a client certificate (cnf x5t#S256): connect with that certificate (mutual TLS), and make sure the proxy in front passes it on',
  certificate_mismatch: () =>
    'the client certificate presented is not the one the token is bound to: connect with the certificate the token was issued for, or get a new token with this one',
  insufficient_scope: (c) =>
    `the token lacks the scope ${c.missing}: ask the authorization server for a token with it (the 403 challenge names it)`,
};

/** The fix for a refusal: one sentence. */
export function fixFor(reason: DPoPRejectReason, context: FixContext): string {
  const fix = FIXES[reason];
  return fix === undefined ? `${REFUSALS[reason][1]}.` : fix(context);
}
