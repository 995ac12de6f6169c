// The library path for authorization-server authors: a minimal token endpoint that checks DPoP
// proofs with @popkit/dpop-verifier's token-request verifier and issues RFC 9068 access tokens
// bound to the proof key (cnf.jkt). Grants: client credentials for a confidential client; for a
// public client, a one-time authorization code (PKCE S256, dpop_jkt) and rotating DPoP-bound
// refresh tokens with reuse detection (RFC 9700 §4.14). No oidc-provider involved.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthOutcome, ReplayStore } from '@popkit/dpop-verifier';
import {
  DPOP_CORS_ALLOW_HEADERS,
  DPOP_CORS_EXPOSE_HEADERS,
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createTokenRequestVerifier,
  mergeExposeHeaders,
} from '@popkit/dpop-verifier';
import { toRequestLike } from '@popkit/dpop-verifier/express';
import express from 'express';
import type { ErrorRequestHandler, Response } from 'express';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { GrantStore } from './grants.ts';
import { createMemoryGrantStore, newOpaqueValue } from './grants.ts';

export interface MinimalAuthorizationServerOptions {
  /** The confidential client (client_secret_basic, client credentials grant). */
  client: { id: string; secret: string };
  audience: string;
  /** A public client (no secret): authorization code with PKCE, DPoP-bound refresh tokens. */
  publicClient?: { id: string; redirectUris: string[] };
  /** Where proof `jti`s are recorded. Default: a `MemoryReplayStore`. */
  replay?: ReplayStore;
  /** Where codes and refresh tokens live. Default: in memory. */
  grants?: GrantStore;
  /** Lifetime of the access tokens issued, in seconds. Default 300. */
  accessTokenTtl?: number;
  /** The token-request verifier's `onResult` (telemetry: `dpopTelemetry().onResult`). */
  onResult?: (outcome: AuthOutcome) => void;
}

/** What the authorization endpoint approved, for {@link MinimalAuthorizationServer.authorize}. */
export interface ApprovedAuthorization {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  codeChallengeMethod: 'S256';
  dpopJkt?: string;
  subject: string;
  scope?: string;
}

export interface MinimalAuthorizationServer {
  issuer: string;
  jwks: { keys: object[] };
  /**
   * Stands in for the authorization endpoint once the user has logged in and consented (both
   * outside this example): records a one-time code, valid 60 s, and returns it.
   */
  authorize(request: ApprovedAuthorization): Promise<string>;
  close(): Promise<void>;
}

const CODE_TTL = 60_000;
const REFRESH_TTL = 24 * 3600_000;

/**
 * Sets popkit's token-endpoint headers (`TokenRequestResult.headers`, `DPoPError.headers`) on
 * the response, merging `Access-Control-Expose-Headers` into the list already there (set by the
 * CORS middleware) instead of replacing it: `res.set(headers)` would drop the app's own names.
 */
function applyDPoPHeaders(res: Response, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'access-control-expose-headers')
      res.setHeader(name, mergeExposeHeaders(res.getHeader(name), value));
    else res.setHeader(name, value);
  }
}

/** Starts the minimal AS on http://127.0.0.1:<port>. */
export async function startMinimalAuthorizationServer(
  options: MinimalAuthorizationServerOptions,
): Promise<MinimalAuthorizationServer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwks = {
    keys: [{ ...(await exportJWK(publicKey)), kid: 'minimal-1', alg: 'ES256', use: 'sig' }],
  };
  const grants = options.grants ?? createMemoryGrantStore();
  const ttl = options.accessTokenTtl ?? 300;
  const app = express();
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Built once: options are validated here, the key cache lives inside.
  const checkDPoP = createTokenRequestVerifier({
    tokenEndpoint: `${issuer}/token`,
    replay: options.replay ?? new MemoryReplayStore(),
    nonces: createNonceIssuer({ secret: randomBytes(32) }),
    required: false, // the confidential client may go without DPoP and get Bearer tokens
    ...(options.onResult ? { onResult: options.onResult } : {}),
  });

  const sameSecret = (given: string, expected: string): boolean => {
    const a = Buffer.from(given);
    const b = Buffer.from(expected);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  /** client_secret_basic for the confidential client, `client_id` alone for the public one. */
  const authenticateClient = (
    authorization: string | undefined,
    clientId: string | undefined,
  ): { id: string; isPublic: boolean } | undefined => {
    if (authorization !== undefined) {
      const expected = `Basic ${btoa(`${options.client.id}:${options.client.secret}`)}`;
      if (!sameSecret(authorization, expected)) return undefined;
      if (clientId !== undefined && clientId !== options.client.id) return undefined;
      return { id: options.client.id, isPublic: false };
    }
    if (options.publicClient && clientId === options.publicClient.id)
      return { id: clientId, isPublic: true };
    return undefined;
  };
  const sign = (claims: Record<string, unknown>, subject: string) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'minimal-1' })
      .setIssuer(issuer)
      .setAudience(options.audience)
      .setSubject(subject)
      .setIssuedAt()
      .setJti(randomBytes(16).toString('base64url'))
      .setExpirationTime(`${ttl}s`)
      .sign(privateKey);
  const spaOrigins = new Set(
    (options.publicClient?.redirectUris ?? []).map((uri) => new URL(uri).origin),
  );

  // CORS for the public client (a browser app on the origins of its redirect URIs): a preflight
  // may send Authorization and DPoP, and every answer exposes popkit's list (the nonce, errors,
  // and Date for a browser whose clock is off) next to the endpoint's own names.
  app.use('/token', (req, res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined || !spaOrigins.has(origin)) return next();
    res.set('Access-Control-Allow-Origin', origin);
    res.vary('Origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.set('Access-Control-Allow-Methods', 'POST');
      res.set('Access-Control-Allow-Headers', DPOP_CORS_ALLOW_HEADERS.join(', '));
      res.set('Access-Control-Max-Age', '600');
      return void res.status(204).end();
    }
    // (a request id for support tickets: a name of the app's own, kept next to popkit's)
    res.set('X-Request-Id', randomBytes(8).toString('hex'));
    res.set(
      'Access-Control-Expose-Headers',
      mergeExposeHeaders('X-Request-Id', DPOP_CORS_EXPOSE_HEADERS),
    );
    next();
  });

  app.get('/jwks', (_req, res) => res.json(jwks));
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const body = (req.body ?? {}) as Record<string, unknown>;
    // A parameter sent twice arrives as an array: treated as absent, hence refused.
    const param = (name: string) => (typeof body[name] === 'string' ? body[name] : undefined);
    const refuse = (status: number, error: string, description: string) =>
      void res.status(status).json({ error, error_description: description });
    const grantType = param('grant_type');
    try {
      // The order (RFC 9449 §5 with one-time grants):
      // 0. look the grant up, read-only, for the key it is bound to;
      // 1. prepare: every proof check, nothing recorded;
      // 2. authenticate the client;  3. validate the grant, read-only (nothing consumed,
      //    rotated or revoked: a used code or rotated refresh token passes here);
      // 4. commit: records the jti. A replayed request stops here, before any side effect;
      //    a replay-store failure answers 503 with the grant untouched, usable by the retry;
      // 5. consume the grant, compare-and-set; a reuse detected here revokes the family;
      // 6. issue.
      // Requests failing 1-3, and anonymous floods, never reach the replay store.
      const code =
        grantType === 'authorization_code' ? await grants.findCode(param('code')) : undefined;
      const refresh =
        grantType === 'refresh_token'
          ? await grants.findRefreshToken(param('refresh_token'))
          : undefined;
      const dpop = await checkDPoP.prepare(toRequestLike(req), {
        dpopJkt: code?.dpopJkt,
        boundJkt: refresh?.jkt,
      });
      applyDPoPHeaders(res, dpop?.headers ?? {}); // a fresh DPoP-Nonce, when due, on every answer

      const client = authenticateClient(req.headers.authorization, param('client_id'));
      if (!client) return refuse(401, 'invalid_client', 'Client authentication failed');

      if (grantType === 'client_credentials') {
        if (client.isPublic)
          return refuse(400, 'unauthorized_client', 'Public clients cannot use this grant');
        await dpop?.commit({ account: client.id }); // fairness by client, not by key
        const accessToken = await sign(
          {
            client_id: client.id,
            scope: 'orders:read',
            ...(dpop ? { cnf: { jkt: dpop.jkt } } : {}),
          },
          client.id,
        );
        return void res.json({
          access_token: accessToken,
          token_type: dpop ? 'DPoP' : 'Bearer',
          expires_in: ttl,
        });
      }
      if (grantType !== 'authorization_code' && grantType !== 'refresh_token')
        return refuse(400, 'unsupported_grant_type', 'Unsupported grant_type');
      if (!client.isPublic)
        return refuse(400, 'unauthorized_client', 'This client may only use client_credentials');
      // Tokens of the public client are always DPoP-bound (a bound code or refresh token
      // already made prepare() require the proof).
      if (!dpop) return refuse(400, 'invalid_dpop_proof', 'A DPoP proof is required');

      if (grantType === 'authorization_code') {
        const verifier = param('code_verifier');
        if (
          !code ||
          code.clientId !== client.id ||
          code.expiresAt <= Date.now() ||
          code.redirectUri !== param('redirect_uri') ||
          verifier === undefined ||
          !sameSecret(createHash('sha256').update(verifier).digest('base64url'), code.codeChallenge)
        )
          return refuse(400, 'invalid_grant', 'The authorization code is invalid');
        await dpop.commit({ account: client.id });
        if (!(await grants.consumeCode(param('code')!))) {
          // Used before by a request with another proof (a copy of the same proof stopped at
          // commit): RFC 6749 §4.1.2, revoke what the code issued.
          await grants.revokeFamily(code.familyId);
          return refuse(400, 'invalid_grant', 'The authorization code is invalid');
        }
        const refreshToken = newOpaqueValue();
        await grants.saveRefreshToken(refreshToken, {
          familyId: code.familyId,
          clientId: client.id,
          jkt: dpop.jkt,
          subject: code.subject,
          scope: code.scope,
          expiresAt: Date.now() + REFRESH_TTL,
        });
        return void res.json({
          access_token: await sign(
            { client_id: client.id, scope: code.scope, cnf: { jkt: dpop.jkt } },
            code.subject,
          ),
          token_type: 'DPoP',
          expires_in: ttl,
          refresh_token: refreshToken,
          scope: code.scope,
        });
      }

      if (
        !refresh ||
        refresh.clientId !== client.id ||
        refresh.expiresAt <= Date.now() ||
        (await grants.isRevoked(refresh.familyId))
      )
        return refuse(400, 'invalid_grant', 'The refresh token is invalid');
      await dpop.commit({ account: client.id });
      const next = newOpaqueValue();
      const rotated = await grants.rotateRefreshToken(param('refresh_token')!, next, {
        ...refresh,
        expiresAt: Date.now() + REFRESH_TTL,
      });
      if (!rotated) {
        // Reuse of a rotated refresh token (with a proof never seen: a copy of the same
        // request stopped at commit): the token leaked, revoke its whole family.
        await grants.revokeFamily(refresh.familyId);
        return refuse(400, 'invalid_grant', 'The refresh token is invalid');
      }
      return void res.json({
        access_token: await sign(
          { client_id: client.id, scope: refresh.scope, cnf: { jkt: dpop.jkt } },
          refresh.subject,
        ),
        token_type: 'DPoP',
        expires_in: ttl,
        refresh_token: next,
        scope: refresh.scope,
      });
    } catch (error) {
      if (!(error instanceof DPoPError)) throw error;
      // 400 {"error":"invalid_dpop_proof" | "use_dpop_nonce"} with DPoP-Nonce (RFC 9449 §5, §8),
      // or 503 with Retry-After when the replay store cannot answer
      applyDPoPHeaders(res, error.headers);
      return void res.status(error.status).send(error.body);
    }
  });
  // Anything else thrown: a JSON answer that says nothing about the request.
  const onError: ErrorRequestHandler = (error: { status?: unknown }, _req, res, _next) => {
    const client = typeof error.status === 'number' && error.status >= 400 && error.status < 500;
    res.status(client ? 400 : 500).json({ error: client ? 'invalid_request' : 'server_error' });
  };
  app.use(onError);

  const authorize = async (request: ApprovedAuthorization): Promise<string> => {
    const known = options.publicClient;
    if (!known || request.clientId !== known.id) throw new Error('authorize: unknown client');
    if (!known.redirectUris.includes(request.redirectUri))
      throw new Error('authorize: redirect_uri not registered');
    if (request.codeChallengeMethod !== 'S256') throw new Error('authorize: S256 only');
    const code = newOpaqueValue();
    await grants.saveCode(code, {
      clientId: request.clientId,
      redirectUri: request.redirectUri,
      codeChallenge: request.codeChallenge,
      ...(request.dpopJkt === undefined ? {} : { dpopJkt: request.dpopJkt }),
      subject: request.subject,
      scope: request.scope ?? 'orders:read',
      expiresAt: Date.now() + CODE_TTL,
      familyId: newOpaqueValue(),
    });
    return code;
  };
  return {
    issuer,
    jwks,
    authorize,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
