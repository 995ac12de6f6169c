/**
 * Why was a DPoP request rejected? Runs every RFC 9449 §4.3 check, and the token binding checks,
 * with the verifier's own check modules (`@popkit/dpop-verifier/internal-checks`), in the
 * verifier's order, and reports each one with what was expected, what was found and the fix.
 *
 * A check that fails does not stop the walk where a later check can still say something: the
 * explainer re-runs the verifier's check on a copy of the proof with the failed member set to
 * what the server expects (never for the verdict: the first failure, in the verifier's order, is
 * the `reason` the verifier gives). Offline, the replay store (§11.1) cannot be consulted.
 * @module
 */
import type { JSONWebKeySet } from 'jose';
import { base64url, createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type {
  AuthRun,
  CompactJws,
  DPoPRejectReason,
  HeaderEntry,
  ProofClaims,
  ProofPolicy,
} from '@popkit/dpop-verifier/internal-checks';
import {
  DPoPError,
  REFUSALS,
  accessTokenSha256,
  checkAth,
  checkCertificate,
  checkClaims,
  checkConfirmation,
  checkFreshness,
  checkHeader,
  checkKeyBinding,
  checkSignature,
  checkValidity,
  compileAuthPolicy,
  expectedHtu,
  jwtRefusal,
  parseJsonObject,
  newRun,
  readCredentials,
  splitCompact,
  tokenScopes,
} from '@popkit/dpop-verifier/internal-checks';
import type { StepId } from './steps.ts';
import { STEP_NAMES, STEP_ORDER, fixFor } from './steps.ts';

/** What was sent, and what the server is configured to expect. */
export interface ExplainInput {
  /** The request method. */
  method: string;
  /** The request URL as the server received it (behind a proxy: its internal URL, see `publicUrl`). */
  url: string;
  /** The `DPoP` header value(s); several values are several header fields. */
  dpop?: string | readonly string[];
  /** The `Authorization` header value(s), e.g. `DPoP eyJ…`. Without it, only the proof is explained. */
  authorization?: string | readonly string[];
  /** The nonce the server expects in the proof (a nonce it keeps itself, compared exactly). */
  nonce?: string;
  /** The server's time: an ISO 8601 string or ms since the epoch. Default: now. */
  now?: string | number;
  /** The server's `publicUrl` option. */
  publicUrl?: string;
  /** The authorization server's JWKS: the token's signature is verified only with it. */
  jwks?: JSONWebKeySet;
  /** The `iss` the server requires of tokens (checked with `jwks`). */
  issuer?: string;
  /** The `aud` the server requires of tokens, one of them for a list (checked with `jwks`). */
  audience?: string | readonly string[];
  /** The server's `allowedHosts` (instead of `publicUrl`). */
  allowedHosts?: readonly string[];
  /**
   * The server reads client certificates (its `certificate` option, RFC 8705): certificate-bound
   * tokens are accepted on `Bearer`. Implied by `certificate`.
   */
  mtls?: boolean;
  /**
   * The client certificate presented on the TLS connection (RFC 8705), for `cnf["x5t#S256"]`
   * tokens: a PEM certificate or its `x5t#S256` thumbprint. Absent: no certificate.
   */
  certificate?: string;
  /** The server's `requiredScopes` (for this route). */
  requiredScopes?: readonly string[];
  /** The request body, when it is a form (`application/x-www-form-urlencoded`). */
  body?: string;
  /** The server's `allowUnboundBearer` option (mixed mode). Default false. */
  allowUnboundBearer?: boolean;
  /** The server's `maxAge` (s). Default 60. */
  maxAge?: number;
  /** The server's `clockTolerance` (s). Default 10. */
  clockTolerance?: number;
  /** The server's `algorithms`. Default the verifier's. */
  algorithms?: readonly string[];
}

/** One check's outcome. `ok` is `null` when it did not run (`skipped`, `not_checked`). */
export interface ExplainStep {
  /** RFC 9449 §4.3 check number, or the name of a binding check (`authorization`, `token`, `scheme`, `certificate`, `jkt`, `scope`, `replay`). */
  step: StepId;
  name: string;
  ok: boolean | null;
  status: 'passed' | 'failed' | 'skipped' | 'not_checked';
  reason: DPoPRejectReason | null;
  expected: string | null;
  found: string | null;
  /** One sentence: how to make this check pass (failed steps), or why it did not run. */
  fix: string | null;
}

/** The explanation of one request. */
export interface Explanation {
  /** Every check that ran passed (the replay check cannot be known offline). */
  ok: boolean;
  /** The `reason` the verifier gives: the first failure in the verifier's order. */
  reason: DPoPRejectReason | null;
  /** The OAuth error code and status of that refusal. */
  code: string | null;
  step: StepId | null;
  steps: ExplainStep[];
  /** The server time used (ISO 8601). */
  now: string;
  /** The proof decoded (private key members redacted), with a hash prefix in place of the proof. */
  proof: { sha256: string; header: unknown; claims: unknown } | null;
  /** The access token: its claims decoded (signature verified only with `jwks`), and a hash prefix. */
  token: { sha256: string; scheme: string | null; claims: unknown; signature: string } | null;
}

/** JWK members that hold private key material (RFC 7517 §9.1, RFC 7518 §6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** What one failure found, before it becomes a step. */
interface Finding {
  reason: DPoPRejectReason;
  expected?: string;
  found?: string;
  /** Details the fix sentence uses. */
  detail?: Record<string, string | number>;
}

class Walk {
  readonly steps = new Map<StepId, ExplainStep>();
  first: { step: StepId; reason: DPoPRejectReason } | undefined;

  pass(step: StepId, expected?: string, found?: string): void {
    if (this.steps.has(step)) return;
    this.steps.set(step, entry(step, 'passed', null, expected, found, null));
  }

  fail(step: StepId, finding: Finding): void {
    this.first ??= { step, reason: finding.reason };
    if (this.steps.get(step)?.status === 'failed') return;
    const fix = fixFor(finding.reason, {
      expected: finding.expected,
      found: finding.found,
      ...finding.detail,
    });
    this.steps.set(
      step,
      entry(step, 'failed', finding.reason, finding.expected, finding.found, fix),
    );
  }

  skip(step: StepId, why: string, status: 'skipped' | 'not_checked' = 'skipped'): void {
    if (this.steps.has(step)) return;
    this.steps.set(step, entry(step, status, null, undefined, undefined, why));
  }
}

function entry(
  step: StepId,
  status: ExplainStep['status'],
  reason: DPoPRejectReason | null,
  expected: string | undefined,
  found: string | undefined,
  fix: string | null,
): ExplainStep {
  return {
    step,
    name: STEP_NAMES[step],
    ok: status === 'passed' ? true : status === 'failed' ? false : null,
    status,
    reason,
    expected: expected ?? null,
    found: found ?? null,
    fix,
  };
}

/** The refusal `reason` of an error a check threw (anything else is the caller's bug). */
function reasonOf(e: unknown): DPoPRejectReason {
  if (e instanceof DPoPError) return e.reason;
  throw e;
}

async function attempt(fn: () => unknown): Promise<DPoPRejectReason | undefined> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    return reasonOf(e);
  }
}

const asList = (v: string | readonly string[] | undefined): string[] =>
  v === undefined ? [] : typeof v === 'string' ? [v] : [...v];

const encodeJson = (value: unknown): string => base64url.encode(JSON.stringify(value));

async function sha256Prefix(value: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value));
  return `sha256:${base64url.encode(new Uint8Array(digest)).slice(0, 12)}`;
}

/** A JWK without its private members (their presence is kept, never their value). */
function redactJwk(jwk: unknown): unknown {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return jwk;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(jwk)) out[k] = PRIVATE_MEMBERS.includes(k) ? '[private]' : v;
  return out;
}

const iso = (sec: number): string => {
  const d = new Date(sec * 1000);
  return Number.isNaN(d.getTime()) ? String(sec) : d.toISOString();
};

const show = (v: unknown): string =>
  v === undefined ? '(absent)' : typeof v === 'string' ? v : JSON.stringify(v);

function parseNow(now: string | number | undefined): number {
  if (now === undefined) return Date.now();
  const ms = typeof now === 'number' ? now : Date.parse(now);
  if (!Number.isFinite(ms)) throw new TypeError(`"now" must be an ISO 8601 time, got ${now}`);
  return ms;
}

/** A key type's usual algorithm, to go on past an `alg` the server does not allow. */
function algForKey(jwk: unknown, allowed: ReadonlySet<string>): string | undefined {
  const { kty, crv } = (jwk ?? {}) as { kty?: unknown; crv?: unknown };
  const candidates =
    kty === 'OKP'
      ? ['EdDSA', 'Ed25519']
      : kty === 'EC'
        ? [crv === 'P-384' ? 'ES384' : crv === 'P-521' ? 'ES512' : 'ES256']
        : kty === 'RSA'
          ? ['PS256', 'RS256']
          : [];
  return candidates.find((a) => allowed.has(a));
}

/**
 * Explains one request: every check with its outcome, expected and found values and the fix.
 * Never throws for a bad request (that is what it explains); throws `TypeError` for unusable
 * input (`method` or `url` missing, a bad `now`) or server options the verifier refuses.
 */
export async function explain(input: ExplainInput): Promise<Explanation> {
  if (input === null || typeof input !== 'object') throw new TypeError('input must be an object');
  if (typeof input.method !== 'string' || input.method.length === 0)
    throw new TypeError('"method" is required');
  if (typeof input.url !== 'string' || input.url.length === 0)
    throw new TypeError('"url" is required');
  const nowMs = parseNow(input.now);
  const nowSec = nowMs / 1000;
  const authorization = asList(input.authorization);
  const dpop = asList(input.dpop);
  const policy = compileAuthPolicy({
    accessToken: () => ({}),
    replay: false,
    now: () => nowMs,
    ...(input.publicUrl !== undefined
      ? { publicUrl: input.publicUrl }
      : input.allowedHosts !== undefined
        ? { allowedHosts: [...input.allowedHosts] }
        : { dangerouslyTrustRequestUrl: true }),
    ...(input.allowUnboundBearer === undefined
      ? {}
      : { allowUnboundBearer: input.allowUnboundBearer }),
    // (the certificate itself is checked below, with the verifier's checkCertificate)
    ...(input.mtls === true || input.certificate !== undefined
      ? { certificate: () => undefined }
      : {}),
    ...(input.maxAge === undefined ? {} : { maxAge: input.maxAge }),
    ...(input.clockTolerance === undefined ? {} : { clockTolerance: input.clockTolerance }),
    ...(input.algorithms === undefined
      ? {}
      : {
          algorithms: input.algorithms as NonNullable<
            Parameters<typeof compileAuthPolicy>[0]['algorithms']
          >,
        }),
  });
  const proofPolicy = policy.proof;
  const rawHeaders: string[] = [];
  for (const v of authorization) rawHeaders.push('authorization', v);
  for (const v of dpop) rawHeaders.push('dpop', v);
  if (input.body !== undefined)
    rawHeaders.push('content-type', 'application/x-www-form-urlencoded');
  const request = {
    method: input.method,
    url: input.url,
    headers: {},
    rawHeaders,
    ...(input.body === undefined
      ? {}
      : { body: Object.fromEntries(new URLSearchParams(input.body)) }),
  };
  const walk = new Walk();

  // The request's credentials: RFC 6750 §2, RFC 9449 §7.1, §4.3 check 1 (the verifier's
  // readCredentials), or for a proof alone, check 1 only.
  const run = newRun(policy, request);
  let url: string | undefined;
  let proof: string | undefined;
  let credentialsOk = false;
  if (authorization.length > 0) {
    const reason = await attempt(() => readCredentials(run));
    if (reason === undefined) {
      credentialsOk = true;
      walk.pass('authorization', 'one Authorization header: DPoP <token>', `${run.scheme} <token>`);
      walk.pass(1, 'at most one DPoP header', `${dpop.length} DPoP header(s)`);
      proof = run.proof;
      url = run.scheme === 'DPoP' ? run.url : undefined;
    } else {
      credentialFailure(walk, reason, authorization, dpop, input);
    }
  } else {
    // Without an Authorization header the verifier refuses (missing_authorization, or the token
    // sent elsewhere); with a proof alone, only the proof is explained (createProofVerifier).
    const reason = (await attempt(() => readCredentials(run))) ?? 'missing_authorization';
    if (dpop.length === 0 || reason !== 'missing_authorization')
      credentialFailure(walk, reason, authorization, dpop, input);
    else walk.skip('authorization', 'no Authorization header given: only the proof is explained');
    if (walk.first !== undefined) {
      // refused above
    } else if (dpop.length > 1 || dpop[0]?.includes(',') === true)
      walk.fail(1, {
        reason: 'multiple_proofs',
        expected: 'one DPoP header field',
        found: `${dpop.length} fields${dpop.some((v) => v.includes(',')) ? ' (comma-joined)' : ''}`,
      });
    else {
      walk.pass(1, 'at most one DPoP header', `${dpop.length} DPoP header(s)`);
      credentialsOk = true;
      proof = dpop[0] ?? '';
      const r = await attempt(() => (url = policy.resolveUrl(request)));
      if (r !== undefined) {
        walk.fail('authorization', { reason: r, found: input.url });
        credentialsOk = false;
      }
    }
  }

  // The access token: decoded for the binding; its signature verified only with a JWKS.
  const token = authorization.length > 0 ? tokenOf(authorization[0]!) : undefined;
  let claims: Record<string, unknown> | undefined;
  let signatureNote = 'not verified (pass --jwks to verify it)';
  if (token !== undefined) {
    try {
      claims = decodeJwt(token.value) as Record<string, unknown>;
    } catch {
      claims = undefined;
    }
  }
  if (!credentialsOk || token === undefined) {
    walk.skip(
      'token',
      token === undefined
        ? 'no access token given'
        : 'the request was refused before the token is read',
    );
  } else if (input.jwks !== undefined) {
    signatureNote = await verifyToken(walk, token.value, claims, input, nowMs);
  } else if (claims === undefined) {
    walk.skip(
      'token',
      'the access token is not a JWT: its claims (cnf.jkt) cannot be read offline; ask your authorization server (introspection)',
      'not_checked',
    );
  } else {
    // Without the JWKS: the time claims only, as the verifier's JWT validation would (5 s).
    const { exp, nbf } = claims;
    if (typeof exp === 'number' && !(exp + 5 > nowSec))
      walk.fail('token', {
        reason: 'token_expired',
        expected: `exp after ${iso(nowSec)}`,
        found: `exp ${iso(exp)}`,
        detail: { ago: Math.round(nowSec - exp) },
      });
    else if (typeof nbf === 'number' && nbf - 5 > nowSec)
      walk.fail('token', {
        reason: 'token_not_yet_valid',
        expected: `nbf before ${iso(nowSec)}`,
        found: `nbf ${iso(nbf)}`,
      });
    else
      walk.skip(
        'token',
        'the token signature, issuer and audience are not verified offline (pass --jwks to verify the signature); its exp and nbf are fine',
        'not_checked',
      );
  }

  // The binding: cnf against the scheme (the verifier's checkConfirmation).
  let boundJkt: string | undefined;
  if (
    credentialsOk &&
    claims !== undefined &&
    run.scheme !== undefined &&
    walk.first === undefined
  ) {
    const cnf = claims.cnf as { jkt?: unknown } | undefined;
    let x5t: string | undefined;
    const reason = await attempt(() => (x5t = checkConfirmation(policy, run.scheme!, claims!).x5t));
    if (reason === undefined) {
      walk.pass('scheme', 'the scheme the token binding needs', `${run.scheme}, cnf ${show(cnf)}`);
      if (run.scheme === 'DPoP' && typeof cnf?.jkt === 'string') boundJkt = cnf.jkt;
      await checkCertificateBinding(walk, x5t, input.certificate);
    } else {
      walk.fail('scheme', {
        reason,
        expected:
          reason === 'downgrade'
            ? 'Authorization: DPoP <token> with a DPoP proof'
            : 'a token with cnf.jkt (DPoP-bound)',
        found: `${run.scheme}, cnf ${show(cnf)}`,
      });
    }
  } else if (credentialsOk && claims !== undefined && walk.first !== undefined) {
    walk.skip('scheme', 'the verifier stops at the token failure before the binding');
  } else {
    walk.skip(
      'scheme',
      claims === undefined && token !== undefined
        ? 'the token claims cannot be read offline'
        : 'no decodable access token',
    );
  }

  // The proof: §4.3 checks 2 to 12 (Bearer requests carry none the server checks).
  let decoded: Explanation['proof'] = null;
  const proofRuns =
    credentialsOk && proof !== undefined && (run.scheme === undefined || run.scheme === 'DPoP');
  if (proofRuns) {
    decoded = await checkProof(walk, proofRuns ? proof! : '', {
      policy: proofPolicy,
      method: input.method,
      url: url ?? input.url,
      nonce: input.nonce,
      token: run.scheme === 'DPoP' ? token?.value : undefined,
      boundJkt,
      bindingKnown: claims !== undefined,
      nowMs,
    });
  }
  const why = !credentialsOk
    ? 'the request was refused before the proof is read'
    : run.scheme === 'Bearer'
      ? 'a Bearer request carries no DPoP proof the server checks'
      : walk.first === undefined
        ? 'an earlier check failed'
        : `cannot run: check ${walk.first.step} failed first (${walk.first.reason})`;
  for (const step of STEP_ORDER)
    if (typeof step === 'number' || step === 'jkt') walk.skip(step, why);
  // The route's requiredScopes (RFC 6750 §3.1), once the request is authentic.
  const required = input.requiredScopes ?? [];
  if (required.length === 0)
    walk.skip(
      'scope',
      'no scopes required (pass --required-scopes with the route’s requiredScopes)',
    );
  else if (!credentialsOk || claims === undefined)
    walk.skip('scope', 'the token claims cannot be read', 'not_checked');
  else {
    const held = tokenScopes(claims);
    const missing = required.filter((scope) => !held.includes(scope));
    if (missing.length === 0) walk.pass('scope', required.join(' '), held.join(' '));
    else
      walk.fail('scope', {
        reason: 'insufficient_scope',
        expected: required.join(' '),
        found: held.length === 0 ? '(no scope)' : held.join(' '),
        detail: { missing: missing.join(' ') },
      });
  }
  walk.skip(
    'certificate',
    'the token is not certificate-bound (no cnf["x5t#S256"]), or its binding was not reached',
  );
  walk.skip(
    'replay',
    'not checked offline: whether this jti was used before is known only to the server replay store (§11.1); a proof is accepted once, so sign a new proof for every request, retries included',
    'not_checked',
  );

  const steps = STEP_ORDER.map((s) => walk.steps.get(s)!).filter(Boolean);
  const first = walk.first;
  return {
    ok: first === undefined,
    reason: first?.reason ?? null,
    code: first === undefined ? null : REFUSALS[first.reason][0],
    step: first?.step ?? null,
    steps,
    now: new Date(nowMs).toISOString(),
    proof: decoded,
    token:
      token === undefined
        ? null
        : {
            sha256: await sha256Prefix(token.value),
            scheme: token.scheme,
            claims: claims ?? null,
            signature: claims === undefined ? 'not a JWT' : signatureNote,
          },
  };
}

function expOf(claims: Record<string, unknown>): string {
  return typeof claims.exp === 'number' ? iso(claims.exp) : show(claims.exp);
}

function tokenOf(authorization: string): { scheme: string; value: string } {
  const space = authorization.indexOf(' ');
  return space > 0
    ? { scheme: authorization.slice(0, space), value: authorization.slice(space + 1).trim() }
    : { scheme: authorization, value: '' };
}

function credentialFailure(
  walk: Walk,
  reason: DPoPRejectReason,
  authorization: string[],
  dpop: string[],
  input: ExplainInput,
): void {
  const scheme = authorization.length === 0 ? '(none)' : tokenOf(authorization[0]!).scheme;
  switch (reason) {
    case 'missing_authorization':
      if (authorization.length > 0) break;
      walk.fail('authorization', {
        reason,
        expected: 'Authorization: DPoP <token>',
        found: 'no Authorization header',
      });
      return;
    case 'token_in_query':
    case 'token_in_body':
      walk.fail('authorization', {
        reason,
        expected: 'the token in the Authorization header only',
        found: `access_token in the ${reason === 'token_in_query' ? 'query string' : 'form body'}`,
      });
      return;
    case 'multiple_proofs':
      walk.pass('authorization', undefined, `${scheme} <token>`);
      walk.fail(1, {
        reason,
        expected: 'one DPoP header field',
        found: `${dpop.length} fields${dpop.some((v) => v.includes(',')) ? ' (comma-joined)' : ''}`,
      });
      return;
    case 'missing_proof':
      walk.pass('authorization', undefined, `${scheme} <token>`);
      walk.fail(1, { reason, expected: 'a DPoP header with a proof', found: 'no DPoP header' });
      return;
    case 'bearer_not_allowed':
      walk.pass('authorization', undefined, `${scheme} <token>`);
      walk.fail('scheme', { reason, expected: 'DPoP', found: scheme });
      return;
    case 'invalid_url':
    case 'invalid_host':
    case 'invalid_path':
      walk.fail('authorization', { reason, expected: 'a usable request URL', found: input.url });
      return;
  }
  walk.fail('authorization', {
    reason,
    expected: 'exactly one Authorization header: DPoP <token>',
    found: `${authorization.length} header(s), scheme ${JSON.stringify(scheme)}`,
  });
}

/** The token's signature and claims with the JWKS, as the verifier's RFC 9068 validation. */
async function verifyToken(
  walk: Walk,
  token: string,
  claims: Record<string, unknown> | undefined,
  input: ExplainInput,
  nowMs: number,
): Promise<string> {
  const checked = [
    'signature',
    'exp/nbf',
    'typ at+jwt',
    ...(input.issuer === undefined ? [] : ['iss']),
    ...(input.audience === undefined ? [] : ['aud']),
  ].join(', ');
  try {
    await jwtVerify(token, createLocalJWKSet(input.jwks!), {
      currentDate: new Date(nowMs),
      clockTolerance: 5,
      requiredClaims: ['exp'],
      typ: 'at+jwt',
      algorithms: [...TOKEN_ALGORITHMS],
      ...(input.issuer === undefined ? {} : { issuer: input.issuer }),
      ...(input.audience === undefined
        ? {}
        : { audience: typeof input.audience === 'string' ? input.audience : [...input.audience] }),
    });
    walk.pass(
      'token',
      `a valid access token (${checked}${input.issuer === undefined || input.audience === undefined ? '; pass --issuer and --audience to check iss and aud' : ''})`,
      `valid; exp ${expOf(claims ?? {})}`,
    );
    return 'verified with the JWKS given';
  } catch (e) {
    const reason = jwtRefusal(e).reason;
    let header: Record<string, unknown> = {};
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
    } catch {
      // not a JWS: token_malformed
    }
    const c = claims ?? {};
    const nowSec = nowMs / 1000;
    const kids = (input.jwks!.keys ?? []).map((k) => show(k.kid)).join(', ');
    const [expected, found]: [string, string] =
      reason === 'token_expired'
        ? [`exp after ${iso(nowSec)}`, `exp ${expOf(c)}`]
        : reason === 'token_not_yet_valid'
          ? [`nbf and iat at or before ${iso(nowSec)}`, `nbf ${show(c.nbf)}, iat ${show(c.iat)}`]
          : reason === 'token_issuer'
            ? [`iss ${show(input.issuer)}`, `iss ${show(c.iss)}`]
            : reason === 'token_audience'
              ? [`aud ${show(input.audience)}`, `aud ${show(c.aud)}`]
              : reason === 'token_type'
                ? ['typ at+jwt (RFC 9068)', `typ ${show(header.typ)}`]
                : reason === 'token_algorithm'
                  ? [`one of ${TOKEN_ALGORITHMS.join(', ')}`, `alg ${show(header.alg)}`]
                  : reason === 'token_unknown_key'
                    ? [`a kid of the JWKS (${kids})`, `kid ${show(header.kid)}`]
                    : reason === 'token_signature'
                      ? ['a valid signature by a key of the JWKS', 'invalid']
                      : ['a JWT signed by a key of the JWKS', (e as Error).message];
    walk.fail('token', {
      reason,
      expected,
      found,
      detail: typeof c.exp === 'number' ? { ago: Math.round(nowSec - c.exp) } : {},
    });
    return 'refused with the JWKS given';
  }
}

/** The verifier's default access token algorithms (`accessToken.algorithms`). */
const TOKEN_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/** The `x5t#S256` of a PEM certificate (or a thumbprint as it is). */
async function certificateThumbprint(certificate: string): Promise<string> {
  const value = certificate.trim();
  if (THUMBPRINT.test(value)) return value;
  const match = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(value);
  let der: Uint8Array | undefined;
  try {
    if (match !== null)
      der = Uint8Array.from(atob(match[1]!.replace(/\s+/g, '')), (ch) => ch.charCodeAt(0));
  } catch {
    der = undefined;
  }
  if (der === undefined || der.length === 0)
    throw new TypeError('"certificate" must be a PEM certificate or its x5t#S256 thumbprint');
  const digest = await crypto.subtle.digest('SHA-256', der as Uint8Array<ArrayBuffer>);
  return base64url.encode(new Uint8Array(digest));
}

/** RFC 8705 §3: the presented certificate against cnf["x5t#S256"] (the verifier's check). */
async function checkCertificateBinding(
  walk: Walk,
  x5t: string | undefined,
  certificate: string | undefined,
): Promise<void> {
  if (x5t === undefined) {
    walk.skip('certificate', 'the token is not certificate-bound (no cnf["x5t#S256"])');
    return;
  }
  const presented =
    certificate === undefined ? undefined : await certificateThumbprint(certificate);
  const reason = await attempt(() => checkCertificate(presented, x5t));
  if (reason === undefined) walk.pass('certificate', x5t, presented);
  else
    walk.fail('certificate', {
      reason,
      expected: `a client certificate with x5t#S256 ${x5t}`,
      found:
        presented === undefined
          ? 'no client certificate (pass --certificate)'
          : `x5t#S256 ${presented}`,
    });
}

interface ProofContext {
  policy: ProofPolicy;
  method: string;
  url: string;
  nonce: string | undefined;
  token: string | undefined;
  /** The token's `cnf.jkt`, when the token is DPoP-bound and the binding check passed. */
  boundJkt: string | undefined;
  bindingKnown: boolean;
  nowMs: number;
}

/** §4.3 checks 2 to 12, in the verifier's order (see `verify-proof.ts`). */
async function checkProof(
  walk: Walk,
  proof: string,
  ctx: ProofContext,
): Promise<Explanation['proof']> {
  const { policy } = ctx;
  const nowSec = ctx.nowMs / 1000;
  // (the verifier normalises the expected htu before it reads the proof)
  let htu: string;
  try {
    htu = expectedHtu(policy, ctx.url);
  } catch (e) {
    walk.fail(9, { reason: reasonOf(e), expected: 'an absolute http(s) URL', found: ctx.url });
    return null;
  }
  // 2. compact form
  let jws: CompactJws;
  try {
    jws = splitCompact(policy, proof);
  } catch (e) {
    const reason = reasonOf(e);
    walk.fail(reason === 'missing_proof' ? 1 : 2, {
      reason,
      expected:
        reason === 'proof_too_long'
          ? `at most ${policy.maxProofLength} characters`
          : 'a compact JWS: three base64url segments',
      found:
        reason === 'proof_too_long'
          ? `${proof.length} characters`
          : `${proof.length} characters, ${proof.split('.').length} segment(s)`,
      detail: { length: proof.length, max: policy.maxProofLength },
    });
    return null;
  }
  const header = parseJsonObject(jws.header);
  const payload = parseJsonObject(jws.payload);
  const decoded = {
    sha256: await sha256Prefix(proof),
    header: header === undefined ? null : { ...header, jwk: redactJwk(header.jwk) },
    claims: payload ?? null,
  };

  // 4, 5, 7 (and crit, b64: a well-formed JWS, check 2): the header, re-run with each failed
  // member corrected to see the next
  let entry: HeaderEntry | undefined;
  let algPatched = false;
  let patched = header === undefined ? undefined : { ...header };
  let segment = jws.header;
  for (let i = 0; i < 6; i++) {
    try {
      entry = await checkHeader(policy, segment);
      break;
    } catch (e) {
      const reason = reasonOf(e);
      const h = patched ?? {};
      if (reason === 'proof_malformed') {
        walk.fail(2, { reason, expected: 'a JSON object header', found: 'not a JSON object' });
        break;
      }
      if (reason === 'typ') {
        walk.fail(4, { reason, expected: 'dpop+jwt', found: show(h.typ) });
        h.typ = 'dpop+jwt';
      } else if (reason === 'alg') {
        const allowed = [...policy.allowed].join(', ');
        walk.fail(5, {
          reason,
          expected: `one of ${allowed}`,
          found: show(h.alg),
          detail: { allowed },
        });
        const alg = algForKey(h.jwk, policy.allowed);
        if (alg === undefined) break;
        h.alg = alg;
        algPatched = true;
      } else if (reason === 'crit' || reason === 'b64') {
        walk.fail(2, {
          reason,
          expected: `no ${reason} header parameter`,
          found: `${reason}: ${show(h[reason])}`,
        });
        delete h[reason];
      } else {
        // jwk
        const message =
          e instanceof Error ? e.message.replace(/^Invalid DPoP proof key: ?/, '') : '';
        walk.fail(7, {
          reason,
          expected: `a public ${show(h.alg)} key`,
          found: message || 'unusable key',
          detail: { why: message },
        });
        break;
      }
      segment = encodeJson(h);
      patched = h;
    }
  }
  if (entry === undefined) {
    if (!walk.steps.has(5) && walk.steps.get(2)?.status !== 'failed')
      walk.skip(5, 'the header could not be read');
    for (const s of [4, 5, 7] as const)
      walk.skip(s, 'the header check stopped at an earlier failure');
    walk.skip(6, 'there is no usable key to verify the signature with');
    walk.skip('jkt', 'there is no usable proof key');
  } else {
    if (!walk.steps.has(2)) walk.pass(2, 'a compact JWS', `${proof.length} characters`);
    walk.pass(4, 'dpop+jwt', show(header?.typ));
    walk.pass(5, `one of ${[...policy.allowed].join(', ')}`, show(header?.alg));
    walk.pass(
      7,
      'a public key',
      `${show((header?.jwk as { kty?: unknown })?.kty)} key, thumbprint ${entry.jkt}`,
    );
    // 12, the key (before the signature, as the verifier does)
    if (ctx.boundJkt !== undefined) {
      const r = await attempt(() => checkKeyBinding(entry!.jkt, ctx.boundJkt));
      if (r === undefined) walk.pass('jkt', ctx.boundJkt, entry.jkt);
      else walk.fail('jkt', { reason: r, expected: ctx.boundJkt, found: entry.jkt });
    } else {
      walk.skip(
        'jkt',
        ctx.token === undefined
          ? 'no access token given'
          : ctx.bindingKnown
            ? 'the token binding check failed'
            : 'the token claims cannot be read offline',
      );
    }
    // 6
    if (algPatched) walk.skip(6, 'the signature cannot be checked with an alg the server refuses');
    else {
      const r = await attempt(() => checkSignature(entry!, jws));
      if (r === undefined) walk.pass(6, 'valid with the jwk header key', 'valid');
      else
        walk.fail(6, {
          reason: r,
          expected: `a valid ${entry.alg} signature by the jwk header key`,
          found: 'invalid',
        });
    }
  }

  // 3, 8, 9 (claims), 11 (exp, nbf), 10 and 11 (nonce, iat), 12 (ath)
  if (payload === undefined) {
    walk.fail(2, {
      reason: 'proof_malformed',
      expected: 'a JSON object payload',
      found: 'not a JSON object',
    });
    for (const s of [3, 8, 9, 10, 11, 12] as const)
      walk.skip(s, 'the payload is not a JSON object');
    return decoded;
  }
  const c: Record<string, unknown> = { ...payload };
  let claims: ProofClaims | undefined;
  for (let i = 0; i < 5; i++) {
    try {
      claims = checkClaims(policy, encodeJson(c), ctx.method, htu);
      break;
    } catch (e) {
      const reason = reasonOf(e);
      if (reason === 'htm') {
        walk.fail(8, { reason, expected: ctx.method, found: show(c.htm) });
        c.htm = ctx.method;
      } else if (reason === 'htu') {
        walk.fail(9, { reason, expected: htu, found: show(c.htu) });
        c.htu = htu;
      } else if (reason === 'jti') {
        walk.fail(3, {
          reason,
          expected: `jti: a unique string of 1 to ${policy.maxJtiLength} characters`,
          found: typeof c.jti === 'string' ? `${c.jti.length} characters` : show(c.jti),
        });
        c.jti = 'explain';
      } else if (reason === 'iat_missing') {
        walk.fail(3, {
          reason,
          expected: 'iat: the creation time in seconds (a number)',
          found: show(c.iat),
        });
        c.iat = Math.floor(nowSec);
      } else {
        walk.fail(3, { reason, expected: 'a JSON object payload', found: 'not a JSON object' });
        break;
      }
    }
  }
  if (claims === undefined) {
    for (const s of [3, 8, 9, 10, 11, 12] as const) walk.skip(s, 'the claims could not be read');
    return decoded;
  }
  walk.pass(8, ctx.method, show(payload.htm));
  walk.pass(9, htu, show(payload.htu));
  walk.pass(
    3,
    'htm, htu, jti and iat',
    `jti ${String(payload.jti).length} characters, iat ${show(payload.iat)}`,
  );
  // 11, exp and nbf
  const v: Record<string, unknown> = { ...claims };
  for (let i = 0; i < 2; i++) {
    const r = await attempt(() => checkValidity(policy, v as ProofClaims, nowSec));
    if (r === undefined) break;
    const claim = r === 'exp' ? 'exp' : 'nbf';
    const value = v[claim];
    walk.fail(11, {
      reason: r,
      expected: r === 'exp' ? `exp after ${iso(nowSec)}` : `nbf at or before ${iso(nowSec)}`,
      found: typeof value === 'number' ? `${claim} ${iso(value)}` : `${claim} ${show(value)}`,
      detail: typeof value === 'number' ? { delta: Math.round(Math.abs(value - nowSec)) } : {},
    });
    delete v[claim];
  }
  // 10 and 11 (nonce, iat)
  const f: Record<string, unknown> = { ...v };
  const expect = {
    method: ctx.method,
    url: ctx.url,
    ...(ctx.nonce === undefined ? {} : { nonce: ctx.nonce }),
  };
  for (let i = 0; i < 3; i++) {
    const r = await attempt(() => checkFreshness(policy, f as ProofClaims, expect, ctx.nowMs));
    if (r === undefined) break;
    if (r === 'nonce_malformed' || r === 'nonce_missing' || r === 'nonce_invalid') {
      walk.fail(10, {
        reason: r,
        expected: ctx.nonce === undefined ? 'a string nonce' : ctx.nonce,
        found: show(payload.nonce),
      });
      if (ctx.nonce === undefined) delete f.nonce;
      else f.nonce = ctx.nonce;
    } else {
      const iat = f.iat as number;
      const oldest = nowSec - policy.maxAge;
      const newest = nowSec + policy.clockTolerance;
      walk.fail(11, {
        reason: r,
        expected: `iat from ${iso(oldest)} to ${iso(newest)} (maxAge ${policy.maxAge} s, clockTolerance ${policy.clockTolerance} s)`,
        found: `iat ${iso(iat)} (${Math.round(Math.abs(iat - nowSec))} s ${iat < nowSec ? 'before' : 'after'} the server's time)`,
        detail: {
          delta: Math.round(Math.abs(iat - nowSec)),
          maxAge: policy.maxAge,
          tolerance: policy.clockTolerance,
        },
      });
      break;
    }
  }
  if (ctx.nonce === undefined && payload.nonce === undefined)
    walk.skip(10, 'no nonce expected (pass --nonce with the one the server issued)');
  walk.pass(10, show(ctx.nonce), show(payload.nonce));
  walk.pass(
    11,
    `iat within ${policy.maxAge} s before to ${policy.clockTolerance} s after the server's time`,
    `iat ${iso(payload.iat as number)}`,
  );
  // 12, the token
  if (ctx.token === undefined) walk.skip(12, 'no access token given');
  else {
    const hash = await accessTokenSha256(ctx.token);
    const r = await attempt(() => checkAth(payload.ath, ctx.token!, hash));
    if (r === undefined) walk.pass(12, hash, show(payload.ath));
    else walk.fail(12, { reason: r, expected: hash, found: show(payload.ath) });
  }
  return decoded;
}
