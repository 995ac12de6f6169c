// The example authorization server: oidc-provider (a certified OpenID Provider) configured for
// DPoP with nonces and for certificate-bound tokens (RFC 8705), issuing RFC 9068 JWT access
// tokens for one resource server, over HTTPS with the demo PKI.
import { randomBytes, X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { matchesTlsClientAuth } from '@popkit/mtls-binding';
import type { DemoPki } from '@popkit/example-shared/pki';
import { SERVICE_SUBJECT_DN } from '@popkit/example-shared/pki';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

/** Credentials of the confidential DPoP service client (client_secret_basic). */
export const SERVICE_CLIENT = {
  id: 'service',
  secret: 'service-secret-do-not-use-in-production',
} as const;
/** The public single-page app client (authorization code + PKCE + DPoP). */
export const SPA_CLIENT_ID = 'spa';
/** The mTLS service client (tls_client_auth, certificate-bound tokens). */
export const MTLS_CLIENT_ID = 'service-mtls';
/** Scopes the resource server understands. */
export const API_SCOPES = 'orders:read orders:write';

export interface AuthorizationServerOptions {
  pki: DemoPki;
  /** The resource server's identifier (RFC 8707 resource indicator, the token `aud`). */
  resource: string;
  /** Redirect URIs of the SPA client. */
  spaRedirectUris: string[];
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
}

export interface AuthorizationServer {
  issuer: string;
  provider: Provider;
  server: Server;
  close(): Promise<void>;
}

/** Starts the authorization server on https://127.0.0.1:<port>. */
export async function startAuthorizationServer(
  options: AuthorizationServerOptions,
): Promise<AuthorizationServer> {
  const server = createServer({
    key: options.pki.server.keyPem,
    cert: options.pki.server.certPem,
    ca: [options.pki.caPem],
    // Ask every client for a certificate; only tls_client_auth clients must present one.
    requestCert: true,
    rejectUnauthorized: false,
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signingJwk = {
    ...(await exportJWK(privateKey)),
    kid: 'as-es256',
    alg: 'ES256',
    use: 'sig',
  };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: SPA_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        application_type: 'web',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: options.spaRedirectUris,
        dpop_bound_access_tokens: true,
      },
      {
        client_id: SERVICE_CLIENT.id,
        client_secret: SERVICE_CLIENT.secret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        dpop_bound_access_tokens: true,
      },
      {
        client_id: MTLS_CLIENT_ID,
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: SERVICE_SUBJECT_DN,
        tls_client_certificate_bound_access_tokens: true,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [signingJwk] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    clientAuthMethods: ['none', 'client_secret_basic', 'tls_client_auth'],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access'], // the API scopes are resource-server scopes (getResourceServerInfo)
    pkce: { required: () => true },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    // First-party apps: grant what the client asks for without a consent screen.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client!.clientId,
        accountId: ctx.oidc.session!.accountId!,
      });
      grant.addOIDCScope('openid');
      grant.addResourceScope(options.resource, API_SCOPES);
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // CORS only for the browser app, from the origins of its redirect URIs.
    clientBasedCORS: (_ctx, origin, client) =>
      client.clientId === SPA_CLIENT_ID &&
      options.spaRedirectUris.some((uri) => new URL(uri).origin === origin),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      // oidc-provider checks DPoP proofs itself (popkit is not in its token endpoint), in its
      // own order (9.x, pinned by test/provider-order.test.ts). refresh_token: the proof's jti
      // is checked before reuse detection and rotation, so a captured refresh request replayed
      // is refused and the session kept. authorization_code: the code is consumed (and, if it
      // already was, the grant revoked) before the jti is checked, so a captured code exchange
      // replayed while its proof is fresh revokes the victim's tokens, and a ReplayDetection
      // adapter failing at that point leaves the code spent. No option or hook reorders it;
      // minimal.ts shows the order popkit recommends (validate, commit, then consume).
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        getCertificate: (ctx) => {
          const raw = (ctx.socket as TLSSocket).getPeerCertificate?.()?.raw;
          return raw ? new X509Certificate(raw) : undefined;
        },
        certificateAuthorized: (ctx) => (ctx.socket as TLSSocket).authorized === true,
        // popkit's RFC 4514 structured DN / SAN matching
        certificateSubjectMatches: (ctx, property, expected) => {
          const raw = (ctx.socket as TLSSocket).getPeerCertificate?.()?.raw;
          return raw ? matchesTlsClientAuth(raw, { [property]: expected }) : false;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (resourceIndicator !== options.resource) throw new errors.InvalidTarget();
          return {
            scope: API_SCOPES,
            audience: options.resource,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'EdDSA', 'Ed25519'] },
    ttl: {
      IdToken: 300,
      AccessToken: 300,
      ClientCredentials: 300,
      RefreshToken: 3600,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
  });
  // oidc-provider logs server errors; keep the demo output clean but visible on failure.
  provider.on('server_error', (_ctx, error) => console.error('[as] server_error:', error.message));
  server.on('request', provider.callback());

  return {
    issuer,
    provider,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
