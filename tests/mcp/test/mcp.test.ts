// DPoP for the Model Context Protocol with the official TypeScript SDK, end to end on
// 127.0.0.1: the SDK's McpServer + StreamableHTTPServerTransport behind popkit's
// requireDPoPAuth (Express), the SDK's Client + StreamableHTTPClientTransport with popkit's
// withDPoP, and tokens from the example authorization server (client credentials, DPoP-bound,
// nonces at its token endpoint). Nothing is mocked: every request crosses a real socket.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { applyMiddlewares, withOAuth } from '@modelcontextprotocol/sdk/client/middleware.js';
import type { Middleware } from '@modelcontextprotocol/sdk/client/middleware.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { thumbprint } from '@popkit/dpop-client';
import { dpopClientMetadata, withDPoP, withDpopJkt } from '@popkit/dpop-client/mcp';
import { loadOrCreateKeyFile } from '@popkit/dpop-client/mcp/node';
import type { AuthOutcome } from '@popkit/dpop-verifier';
import { MemoryReplayStore, createNonceIssuer } from '@popkit/dpop-verifier';
import { dpopResourceMetadata, requireDPoPAuth } from '@popkit/dpop-verifier/mcp';
import type { MinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import { startMinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import express from 'express';
import type { RequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLIENT = { id: 'mcp-cli', secret: randomBytes(16).toString('hex') };
const PUBLIC_CLIENT = { id: 'mcp-desktop', redirectUris: ['http://127.0.0.1:7777/callback'] };

/** One request as it left the client (below withDPoP) and its answer. */
interface Wire {
  method: string;
  url: string;
  authorization: string | null;
  dpop: string | null;
  body: string | undefined;
  status: number;
  wwwAuthenticate: string | null;
}

/** A middleware under withDPoP that records the wire (tokens stay inside the test). */
function recorder(log: Wire[]): Middleware {
  return (next) => async (input, init) => {
    const headers = new Headers(init?.headers);
    const response = await next(input, init);
    log.push({
      method: init?.method ?? 'GET',
      url: String(input),
      authorization: headers.get('authorization'),
      dpop: headers.get('dpop'),
      body: typeof init?.body === 'string' ? init.body : init?.body?.toString(),
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
    });
    return response;
  };
}

let as: MinimalAuthorizationServer;
let rs: Server;
let origin: string;
let dir: string;
const outcomes: AuthOutcome[] = [];
/** What each tool call saw as `extra.authInfo`. */
const seen: AuthInfo[] = [];

/** A stateless MCP server per request, as the SDK's examples run it. */
const mcpHandler: RequestHandler = async (req, res) => {
  const server = new McpServer({ name: 'popkit-mcp-test', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who the token says you are' }, (extra) => {
    seen.push(extra.authInfo!);
    const { clientId, scopes } = extra.authInfo!;
    return {
      content: [
        {
          type: 'text',
          text: JSON.stringify({ clientId, scopes, jkt: extra.authInfo!.extra?.jkt }),
        },
      ],
    };
  });
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  // (req.auth is the SDK's AuthInfo, set by requireDPoPAuth; popkit's result is on req.dpop)
  await transport.handleRequest(req, res, req.body);
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'popkit-mcp-'));
  const app = express();
  app.use(express.json());
  rs = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => rs.once('listening', resolve));
  origin = `http://127.0.0.1:${(rs.address() as AddressInfo).port}`;
  as = await startMinimalAuthorizationServer({
    client: CLIENT,
    publicClient: PUBLIC_CLIENT,
    audience: `${origin}/mcp`,
  });

  const common = {
    accessToken: { issuer: as.issuer, audience: `${origin}/mcp`, jwks: as.jwks },
    publicUrl: origin,
    replay: new MemoryReplayStore(),
    nonces: createNonceIssuer({ secret: randomBytes(32) }),
    resourceMetadataUrl: `${origin}/.well-known/oauth-protected-resource/mcp`,
    onResult: (outcome: AuthOutcome) => outcomes.push(outcome),
  };
  const mcpAuth = requireDPoPAuth({
    ...common,
    requiredScopes: ['orders:read'],
    expectedResource: new URL(`${origin}/mcp`),
  });
  const adminAuth = requireDPoPAuth({
    ...common,
    requiredScopes: ['orders:admin'],
    resourceMetadataUrl: `${origin}/.well-known/oauth-protected-resource/admin/mcp`,
  });
  const metadata = (resource: string) => ({
    resource,
    authorization_servers: [as.issuer],
    scopes_supported: ['orders:read', 'orders:admin'],
    ...dpopResourceMetadata(mcpAuth),
  });
  app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) =>
    res.json(metadata(`${origin}/mcp`)),
  );
  app.get('/.well-known/oauth-protected-resource/admin/mcp', (_req, res) =>
    res.json(metadata(`${origin}/admin/mcp`)),
  );
  app.all('/mcp', mcpAuth, mcpHandler);
  app.all('/admin/mcp', adminAuth, mcpHandler);
});

afterAll(async () => {
  rs?.closeAllConnections();
  await new Promise((resolve) => (rs ? rs.close(resolve) : resolve(undefined)));
  await as?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Session {
  client: Client;
  provider: ClientCredentialsProvider;
  wire: Wire[];
  jkt: string;
  close(): Promise<void>;
}

/** A CLI-like MCP client: its key from the key file, its tokens from `tokens` if given. */
async function connect(
  keyFile: string,
  path = '/mcp',
  tokens?: OAuthTokens,
  wire: Wire[] = [],
): Promise<Session> {
  const { keyPair, jkt } = await loadOrCreateKeyFile(keyFile);
  const provider = new ClientCredentialsProvider({
    clientId: CLIENT.id,
    clientSecret: CLIENT.secret,
    expectedIssuer: as.issuer,
  });
  if (tokens) provider.saveTokens(tokens);
  const transport = new StreamableHTTPClientTransport(new URL(`${origin}${path}`), {
    authProvider: provider,
    fetch: applyMiddlewares(recorder(wire), withDPoP(keyPair, { provider }))(fetch),
  });
  const client = new Client({ name: 'popkit-mcp-cli', version: '1.0.0' });
  await client.connect(transport);
  return { client, provider, wire, jkt, close: () => client.close() };
}

async function whoami(
  client: Client,
): Promise<{ clientId: string; scopes: string[]; jkt: string }> {
  const result = await client.callTool({ name: 'whoami' });
  const content = result.content as Array<{ type: string; text: string }>;
  return JSON.parse(content[0]!.text) as { clientId: string; scopes: string[]; jkt: string };
}

/** The scheme of the request's Authorization header (never the token: assertions print it). */
const scheme = (w: Wire) => w.authorization?.split(' ')[0];

const isTokenRequest = (w: Wire) => w.method === 'POST' && w.url === `${as.issuer}/token`;

describe('MCP with the official SDK and DPoP', () => {
  let first: Session;
  const keyFile = () => join(dir, 'cli', 'dpop-key.json');

  it('gets a DPoP-bound token, answers both nonce challenges, and the tool sees AuthInfo', async () => {
    first = await connect(keyFile());
    const me = await whoami(first.client);
    expect(me).toEqual({ clientId: CLIENT.id, scopes: ['orders:read'], jkt: first.jkt });
    expect(first.jkt).toBe(await thumbprint((await loadOrCreateKeyFile(keyFile())).keyPair));

    const info = seen.at(-1)!;
    expect(info.clientId).toBe(CLIENT.id);
    expect(info.scopes).toEqual(['orders:read']);
    expect(info.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect(info.resource?.href).toBe(`${origin}/mcp`);
    expect(info.extra?.jkt).toBe(first.jkt);

    const { wire } = first;
    // 1. the first MCP request has no token: 401 with the RFC 9728 pointer on a DPoP challenge
    expect(wire[0]!.status).toBe(401);
    expect(wire[0]!.wwwAuthenticate).toMatch(/^DPoP /);
    expect(wire[0]!.wwwAuthenticate).toContain(
      `resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
    );
    expect(wire[0]!.wwwAuthenticate).toContain('scope="orders:read"');
    // 2. discovery is not signed
    const discovery = wire.filter((w) => w.url.includes('/.well-known/'));
    expect(discovery.length).toBeGreaterThan(0);
    for (const w of discovery) expect(w.dpop).toBeNull();
    // 3. the token request carries a proof; the AS wants a nonce first (400 use_dpop_nonce)
    const tokenRequests = wire.filter(isTokenRequest);
    expect(tokenRequests.map((w) => w.status)).toEqual([400, 200]);
    for (const w of tokenRequests) expect(w.dpop).toMatch(/^ey/);
    // 4. every MCP request with the token is sent on the DPoP scheme with a proof, never Bearer
    const mcp = wire.filter((w) => w.url === `${origin}/mcp` && w.authorization !== null);
    expect(mcp.length).toBeGreaterThan(1);
    for (const w of mcp) {
      expect(scheme(w)).toBe('DPoP');
      expect(w.dpop).toMatch(/^ey/);
    }
    // 5. the MCP server's own nonce challenge, answered once
    expect(mcp[0]!.status).toBe(401);
    expect(mcp[0]!.wwwAuthenticate).toContain('error="use_dpop_nonce"');
    expect(mcp.slice(1).every((w) => w.status < 300)).toBe(true);
  });

  it('refuses a replayed request and the token downgraded to Bearer', async () => {
    const sent = first.wire.filter((w) => w.url === `${origin}/mcp` && w.status === 200).at(-1)!;
    const replay = await fetch(sent.url, {
      method: 'POST',
      headers: {
        authorization: sent.authorization!,
        dpop: sent.dpop!,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: sent.body!,
    });
    expect(replay.status).toBe(401);
    expect(replay.headers.get('www-authenticate')).toContain('error="invalid_dpop_proof"');
    expect(await replay.json()).toEqual({
      error: 'invalid_dpop_proof',
      error_description: 'The DPoP proof has already been used',
    });
    expect(outcomes.at(-1)).toMatchObject({ outcome: 'rejected', reason: 'replay' });

    const token = sent.authorization!.slice('DPoP '.length);
    const downgrade = await fetch(sent.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: sent.body!,
    });
    expect(downgrade.status).toBe(401);
    expect(downgrade.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/);
    expect(outcomes.at(-1)).toMatchObject({ outcome: 'rejected', reason: 'bearer_not_allowed' });
    await downgrade.body?.cancel();
  });

  it('answers a token without the scope 403 insufficient_scope, and the SDK tries to step up', async () => {
    const wire: Wire[] = [];
    const admin = await connect(keyFile(), '/admin/mcp', undefined, wire).catch((e: unknown) => e);
    expect(admin).toBeInstanceOf(Error);
    expect((admin as Error).message).toMatch(/403 after trying upscoping/);
    const stepUp = outcomes.filter(
      (o) => o.outcome === 'rejected' && o.reason === 'insufficient_scope',
    );
    expect(stepUp.length).toBe(2); // before and after the SDK asked again
    expect(stepUp[0]).toMatchObject({ status: 403, code: 'insufficient_scope' });
    const refused = wire.filter((w) => w.status === 403);
    expect(refused.length).toBe(2);
    for (const w of refused) {
      expect(scheme(w)).toBe('DPoP');
      expect(w.wwwAuthenticate).toMatch(/^DPoP error="insufficient_scope"/);
      expect(w.wwwAuthenticate).toContain('scope="orders:admin"');
      expect(w.wwwAuthenticate).toContain(
        `resource_metadata="${origin}/.well-known/oauth-protected-resource/admin/mcp"`,
      );
    }
    // the SDK read the DPoP challenge (shown to it as Bearer) and asked for a new token
    const tokens = wire.filter((w) => isTokenRequest(w) && w.status === 200);
    expect(tokens.length).toBe(2);
    expect(wire.indexOf(tokens[1]!)).toBeGreaterThan(wire.indexOf(refused[0]!));
  });

  it('keeps its key across a restart: the stored DPoP token works without a new token request', async () => {
    const tokens = first.provider.tokens()!;
    expect(tokens.token_type).toBe('DPoP');
    await first.close();
    // what a CLI writes to its token cache, and reads back at its next start
    const cache = join(dir, 'cli', 'tokens.json');
    writeFileSync(cache, JSON.stringify(tokens), { mode: 0o600 });
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600);

    const again = await connect(keyFile(), '/mcp', JSON.parse(readFileSync(cache, 'utf8')));
    expect(again.jkt).toBe(first.jkt);
    expect(await whoami(again.client)).toMatchObject({ jkt: first.jkt });
    expect(again.wire.filter(isTokenRequest)).toEqual([]);
    const mcp = again.wire.filter((w) => w.authorization !== null);
    for (const w of mcp) expect(scheme(w)).toBe('DPoP');
    await again.close();

    // The same tokens with another key: refused, so the client had to get a new token.
    const other = await connect(join(dir, 'other', 'dpop-key.json'), '/mcp', tokens);
    expect(other.jkt).not.toBe(first.jkt);
    expect(other.wire.find((w) => w.authorization?.startsWith('DPoP '))?.status).toBe(401);
    expect(other.wire.filter(isTokenRequest).length).toBeGreaterThan(0);
    await other.close();
  });

  it('composes with the SDK withOAuth middleware', async () => {
    const { keyPair } = await loadOrCreateKeyFile(keyFile());
    const provider = new ClientCredentialsProvider({
      clientId: CLIENT.id,
      clientSecret: CLIENT.secret,
      expectedIssuer: as.issuer,
    });
    const wire: Wire[] = [];
    // (applyMiddlewares: the first is the innermost, nearest the network)
    const oauthFetch = applyMiddlewares(
      recorder(wire),
      withDPoP(keyPair),
      withOAuth(provider, `${origin}/mcp`),
    )(fetch);
    const response = await oauthFetch(`${origin}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    });
    expect(response.status).toBe(200);
    await response.body?.cancel();
    expect(scheme(wire.at(-1)!)).toBe('DPoP');
    expect(wire.filter(isTokenRequest).at(-1)!.status).toBe(200);
  });
});

/**
 * A public desktop/CLI client of the SDK (authorization code + PKCE), its tokens in a file:
 * what `redirectToAuthorization` gets is "opened" by approving it at the example AS, which
 * binds the code to the `dpop_jkt` that `withDpopJkt` added.
 */
class DesktopProvider implements OAuthClientProvider {
  authorizationUrl: URL | undefined;
  #verifier = '';
  constructor(
    readonly keyPair: CryptoKeyPair,
    readonly tokenFile: string,
  ) {}
  get redirectUrl() {
    return PUBLIC_CLIENT.redirectUris[0]!;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'popkit desktop',
      redirect_uris: PUBLIC_CLIENT.redirectUris,
      token_endpoint_auth_method: 'none',
      ...dpopClientMetadata(),
    };
  }
  clientInformation(): OAuthClientInformationMixed {
    return { client_id: PUBLIC_CLIENT.id, issuer: as.issuer } as OAuthClientInformationMixed;
  }
  tokens(): OAuthTokens | undefined {
    try {
      return JSON.parse(readFileSync(this.tokenFile, 'utf8')) as OAuthTokens;
    } catch {
      return undefined;
    }
  }
  saveTokens(tokens: OAuthTokens) {
    writeFileSync(this.tokenFile, JSON.stringify(tokens), { mode: 0o600 });
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrl = await withDpopJkt(url, this.keyPair);
  }
  saveCodeVerifier(verifier: string) {
    this.#verifier = verifier;
  }
  codeVerifier() {
    return this.#verifier;
  }
}

describe('MCP with the SDK: authorization code, dpop_jkt, a bound refresh token across a restart', () => {
  const keyFile = () => join(dir, 'desktop', 'dpop-key.json');
  const tokenFile = () => join(dir, 'desktop', 'tokens.json');

  async function desktop(keyPath: string) {
    const { keyPair, jkt } = await loadOrCreateKeyFile(keyPath);
    const provider = new DesktopProvider(keyPair, tokenFile());
    const wire: Wire[] = [];
    const transport = () =>
      new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), {
        authProvider: provider,
        fetch: applyMiddlewares(recorder(wire), withDPoP(keyPair, { provider }))(fetch),
      });
    return { keyPair, jkt, provider, wire, transport };
  }

  it('logs in with a code bound to the key, then calls a tool', async () => {
    const d = await desktop(keyFile());
    const first = d.transport();
    const client = new Client({ name: 'popkit-desktop', version: '1.0.0' });
    await expect(client.connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    const url = d.provider.authorizationUrl!;
    expect(url.searchParams.get('dpop_jkt')).toBe(d.jkt);
    // the user logs in and consents; the AS redirects back with a code bound to dpop_jkt
    const code = await as.authorize({
      clientId: PUBLIC_CLIENT.id,
      redirectUri: url.searchParams.get('redirect_uri')!,
      codeChallenge: url.searchParams.get('code_challenge')!,
      codeChallengeMethod: 'S256',
      dpopJkt: url.searchParams.get('dpop_jkt')!,
      subject: 'alice',
      scope: 'orders:read',
    });
    await first.finishAuth(code);
    expect(d.provider.tokens()).toMatchObject({ token_type: 'DPoP' });
    expect(d.provider.tokens()?.refresh_token).toBeTruthy();
    const connected = new Client({ name: 'popkit-desktop', version: '1.0.0' });
    await connected.connect(d.transport());
    expect(await whoami(connected)).toEqual({
      clientId: PUBLIC_CLIENT.id,
      scopes: ['orders:read'],
      jkt: d.jkt,
    });
    await connected.close();
  });

  it('after a restart the same key redeems the bound refresh token', async () => {
    // the access token is gone (expired, revoked): only the refresh token can help
    const stored = JSON.parse(readFileSync(tokenFile(), 'utf8')) as OAuthTokens;
    writeFileSync(tokenFile(), JSON.stringify({ ...stored, access_token: 'expired.token.x' }));
    const d = await desktop(keyFile());
    const client = new Client({ name: 'popkit-desktop', version: '1.0.0' });
    await client.connect(d.transport());
    expect(await whoami(client)).toMatchObject({ clientId: PUBLIC_CLIENT.id, jkt: d.jkt });
    const refresh = d.wire.filter(
      (w) => isTokenRequest(w) && w.body?.includes('grant_type=refresh_token'),
    );
    expect(refresh.map((w) => w.status)).toContain(200);
    expect(d.provider.tokens()?.refresh_token).not.toBe(stored.refresh_token); // rotated
    await client.close();
  });

  it('with a new key the bound refresh token is refused and the user must log in again', async () => {
    const stored = JSON.parse(readFileSync(tokenFile(), 'utf8')) as OAuthTokens;
    writeFileSync(tokenFile(), JSON.stringify({ ...stored, access_token: 'expired.token.y' }));
    const d = await desktop(join(dir, 'desktop-new-key', 'dpop-key.json'));
    const client = new Client({ name: 'popkit-desktop', version: '1.0.0' });
    await expect(client.connect(d.transport())).rejects.toBeInstanceOf(UnauthorizedError);
    const refresh = d.wire.filter(
      (w) => isTokenRequest(w) && w.body?.includes('grant_type=refresh_token'),
    );
    expect(refresh.length).toBeGreaterThan(0);
    expect(refresh.every((w) => w.status === 400)).toBe(true);
    expect(d.provider.authorizationUrl?.searchParams.get('dpop_jkt')).toBe(d.jkt);
  });
});
