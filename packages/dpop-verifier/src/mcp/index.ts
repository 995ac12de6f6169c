/**
 * `@popkit/dpop-verifier/mcp`: DPoP for Model Context Protocol servers built with the official
 * TypeScript SDK (`@modelcontextprotocol/sdk`) on Express.
 *
 * - {@link requireDPoPAuth}: a drop-in for the SDK's `requireBearerAuth` (the same
 *   `requiredScopes`, `resourceMetadataUrl` and `expectedResource` options, plus popkit's
 *   {@link DPoPAuthOptions}). It sets the SDK's `AuthInfo` on `req.auth`, which
 *   `StreamableHTTPServerTransport.handleRequest(req, …)` hands to tools as `extra.authInfo`,
 *   and popkit's own result on `req.dpop`.
 * - {@link dpopResourceMetadata}: the RFC 9449 §5.2 members of the RFC 9728 protected-resource
 *   metadata document.
 *
 * Typings: this module declares only `req.dpop`. It never declares `req.auth`, so it cannot
 * collide with the SDK's declaration (`auth?: AuthInfo`, from its bearer middleware), and
 * `transport.handleRequest(req, res, req.body)` compiles. (In a program that also imports
 * `@popkit/dpop-verifier/express`, `req.auth` is typed as popkit's `AuthResult`, which has
 * `AuthInfo`'s `token`, `clientId`, `scopes` and `expiresAt`, so the transport accepts it too;
 * after `requireDPoPAuth` read popkit's result from `req.dpop`.)
 *
 * @packageDocumentation
 */
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Adapter } from '../adapter-core.ts';
import { handle } from '../adapter-core.ts';
import { DEFAULT_ALGORITHMS } from '../algorithms.ts';
import type { ProofAlgorithm } from '../algorithms.ts';
import type { TokenClaims } from '../access-token.ts';
import type { AuthResult, DPoPAuthOptions } from '../auth.ts';
import { compileDPoPAuth } from '../auth.ts';
import type { DPoPError } from '../errors.ts';
import { DPoPConfigError, refuse } from '../errors.ts';
import type { ExpressCall } from '../express/node-adapter.ts';
import { EXPRESS_BASE } from '../express/node-adapter.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** popkit's result for a request `requireDPoPAuth` authenticated (`req.auth` is the SDK's `AuthInfo`). */
      dpop?: AuthResult;
    }
  }
}

/** Options of {@link requireDPoPAuth}: the SDK's `requireBearerAuth` options and popkit's. */
export interface DPoPMcpAuthOptions extends DPoPAuthOptions {
  /**
   * The protected-resource metadata URL (RFC 9728), sent as `resource_metadata` on every
   * challenge, as the SDK's `requireBearerAuth` does. The same as popkit's `resourceMetadata`
   * (set one).
   */
  resourceMetadataUrl?: string;
  /**
   * Accept only tokens issued for this resource: one of the token's `aud` values must equal it
   * (a fragment and one trailing slash aside, as the SDK compares). It becomes
   * `AuthInfo.resource`. With JWT access tokens popkit already checks `audience`.
   */
  expectedResource?: URL;
}

/** What {@link dpopResourceMetadata} returns: RFC 9449 §5.2's members of RFC 9728 metadata. */
export interface DPoPResourceMetadata {
  /** The proof algorithms this resource accepts. */
  dpop_signing_alg_values_supported: ProofAlgorithm[];
  /** Whether this resource always requires DPoP-bound access tokens. */
  dpop_bound_access_tokens_required: boolean;
}

/** The options `dpopResourceMetadata` reads, or a middleware made by {@link requireDPoPAuth}. */
export type DPoPResourceMetadataSource =
  | Pick<DPoPAuthOptions, 'algorithms' | 'allowUnboundBearer' | 'allowBearer' | 'certificate'>
  | RequestHandler;

const metadataOf = new WeakMap<RequestHandler, DPoPResourceMetadata>();

/**
 * The RFC 9449 §5.2 members of this resource's RFC 9728 protected-resource metadata: the proof
 * algorithms it accepts and whether it requires DPoP-bound tokens (true unless unbound or
 * certificate-bound tokens are accepted on `Bearer`). Pass the options given to
 * {@link requireDPoPAuth}, or the middleware it returned. Spread it into the document you
 * serve (the SDK's `mcpAuthMetadataRouter` has no way to add members).
 *
 * @example
 * ```ts
 * app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) =>
 *   res.json({ resource, authorization_servers: [issuer], ...dpopResourceMetadata(mcpAuth) }));
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5.2
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 */
export function dpopResourceMetadata(source: DPoPResourceMetadataSource): DPoPResourceMetadata {
  if (typeof source === 'function') {
    const known = metadataOf.get(source);
    if (known === undefined)
      throw new DPoPConfigError('source', 'must be options or a middleware from requireDPoPAuth');
    return {
      ...known,
      dpop_signing_alg_values_supported: [...known.dpop_signing_alg_values_supported],
    };
  }
  if (source === null || typeof source !== 'object')
    throw new DPoPConfigError('source', 'must be options or a middleware from requireDPoPAuth');
  const unbound = source.allowUnboundBearer ?? source.allowBearer ?? false;
  return {
    dpop_signing_alg_values_supported: [...(source.algorithms ?? DEFAULT_ALGORITHMS)],
    dpop_bound_access_tokens_required: !unbound && source.certificate === undefined,
  };
}

/**
 * Express middleware for MCP servers: a drop-in for the SDK's `requireBearerAuth` that accepts
 * DPoP-bound tokens (RFC 9449) with every check of {@link createDPoPAuth} (proof, `ath`,
 * nonces, replay, a bound token sent as `Bearer` refused as a downgrade).
 *
 * On success `req.auth` is the SDK's `AuthInfo` (`token`, `clientId` from `client_id` or
 * `azp`, `scopes` from `scope` or `scp`, `expiresAt` from `exp`, `resource`, and `extra`
 * with `jkt`, `scheme`, `sub`, `iss`), so tools see it as `extra.authInfo`; `req.dpop` is
 * popkit's result. A token without `exp` is refused, as the SDK does.
 *
 * Refusals carry popkit's `WWW-Authenticate` challenge with `scope` (the `requiredScopes`) and
 * `resource_metadata` (`resourceMetadataUrl`), `DPoP-Nonce` when due, and a JSON
 * `{ error, error_description }` body: 401 for a missing or invalid token or proof (and
 * `use_dpop_nonce`), 403 `insufficient_scope` for a token without the required scopes (the
 * client can ask for them: step-up), 400 for a malformed request, 503 when the replay store
 * or the token validator is unavailable.
 *
 * @example
 * ```ts
 * const mcpAuth = requireDPoPAuth({ accessToken: { issuer, audience, jwks }, publicUrl,
 *   replay: new MemoryReplayStore(), requiredScopes: ['mcp:tools'], resourceMetadataUrl });
 * app.post('/mcp', mcpAuth, (req, res) => transport.handleRequest(req, res, req.body));
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 */
export function requireDPoPAuth(options: DPoPMcpAuthOptions): RequestHandler {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  const { resourceMetadataUrl, expectedResource, ...core } = options;
  if (resourceMetadataUrl !== undefined && core.resourceMetadata !== undefined)
    throw new DPoPConfigError('resourceMetadataUrl', 'is the same as "resourceMetadata": set one');
  if (expectedResource !== undefined && !(expectedResource instanceof URL))
    throw new DPoPConfigError('expectedResource', 'must be a URL');
  const coreOptions: DPoPAuthOptions =
    resourceMetadataUrl === undefined ? core : { ...core, resourceMetadata: resourceMetadataUrl };
  // validates every option, once; the SDK's own rules run inside, so onResult sees the answer
  const authenticate = compileDPoPAuth(coreOptions, (claims) => sdkRules(claims, expectedResource));
  const adapter = mcpAdapter(expectedResource);
  const middleware: RequestHandler = (req, res, next) => {
    handle(adapter, authenticate, { req, res, next });
  };
  metadataOf.set(middleware, dpopResourceMetadata(coreOptions));
  return middleware;
}

/** The SDK's comparison: the serialized URL without its fragment and one trailing slash. */
function comparable(value: string): string {
  const hash = value.indexOf('#');
  return (hash === -1 ? value : value.slice(0, hash)).replace(/\/$/, '');
}

function audiences(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

function asUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/**
 * What the SDK's `requireBearerAuth` refuses and popkit's core does not: a token without `exp`,
 * and, with `expectedResource`, a token whose audience is another resource.
 */
function sdkRules(claims: TokenClaims, expected: URL | undefined): void {
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp))
    throw refuse('token_malformed', { description: 'The access token has no expiration time' });
  if (expected !== undefined) {
    const want = comparable(expected.href);
    if (!audiences(claims.aud).some((a) => comparable(a) === want)) throw refuse('token_audience');
  }
}

/** The SDK's `AuthInfo` for an accepted request (which passed {@link sdkRules}). */
function authInfoOf(result: AuthResult, expected: URL | undefined): AuthInfo {
  const { claims } = result;
  const aud = audiences(claims.aud);
  let resource: URL | undefined = expected;
  if (expected === undefined && aud.length === 1) resource = asUrl(aud[0]!);
  const extra: Record<string, unknown> = { scheme: result.scheme };
  if (result.jkt !== undefined) extra.jkt = result.jkt;
  if (typeof claims.sub === 'string') extra.sub = claims.sub;
  if (typeof claims.iss === 'string') extra.iss = claims.iss;
  return {
    token: result.token,
    clientId: result.clientId,
    scopes: result.scopes,
    expiresAt: result.expiresAt!,
    ...(resource === undefined ? {} : { resource }),
    extra,
  };
}

/** A refusal's status and headers, with a JSON body as the SDK's middleware answers. */
function answer(res: Response, error: DPoPError): void {
  res.statusCode = error.status;
  const { headers } = error;
  for (const name in headers) res.setHeader(name, headers[name]!);
  const body = JSON.stringify({ error: error.code, error_description: error.message });
  res.setHeader('Content-Type', 'application/json');
  res.end(body);
}

function mcpAdapter(expected: URL | undefined): Adapter<ExpressCall, void> {
  return {
    ...EXPRESS_BASE,
    refuse({ res, next }, error) {
      try {
        answer(res, error);
      } catch (thrown) {
        next(thrown);
      }
    },
    accept({ req, res, next }, result) {
      try {
        for (const name in result.headers) res.setHeader(name, result.headers[name]!);
      } catch (error) {
        return next(error);
      }
      (req as { auth?: AuthInfo }).auth = authInfoOf(result, expected);
      req.dpop = result;
      next();
    },
  };
}

export type { AuthResult, DPoPAuthOptions } from '../auth.ts';
