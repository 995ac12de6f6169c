// The servers the observability files are tested against, all on 127.0.0.1: the minimal
// authorization server (its token endpoint verified by popkit, with telemetry), the example API
// over HTTPS (JWT access tokens, /metrics), a second instance of it validating tokens by RFC 7662
// introspection at a small introspection endpoint, and demo-like traffic from
// @popkit/dpop-client: valid calls, nonce challenges, a replay, a stolen token, a Bearer
// downgrade, stale and future clocks, forged signatures, garbage tokens and token requests.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FetchLike } from '@popkit/dpop-client';
import { createDPoPFetch, createProof, generateKeyPair } from '@popkit/dpop-client';
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import type { MinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import { startMinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import { startApi } from '@popkit/example-resource-server';
import type { RunningApi } from '@popkit/example-resource-server';
import { AuthMetrics } from '@popkit/example-resource-server/metrics';
import type { ApiAuth } from '@popkit/example-resource-server/options';
import { buildAuthOptions } from '@popkit/example-resource-server/options';
import { createTestPki } from '@popkit/example-shared/pki';
import { freePort } from '@popkit/example-shared/redis';
import { fetchTrusting } from '@popkit/example-shared/tls';
import { createLocalJWKSet, jwtVerify } from 'jose';

export const AUDIENCE = 'https://api.popkit.example';
const CLIENT = { id: 'svc', secret: 'secret' };
const INTROSPECTOR = { id: 'api', secret: 'introspection-secret' };

/** One scrape target: where Prometheus reads it. */
export interface Target {
  job: string;
  /** host:port */
  address: string;
  scheme: 'http' | 'https';
}

export interface Stack {
  /** The example API's metrics (JWT and introspection instances share one registry). */
  api: Target;
  /** The authorization server's token-endpoint metrics. */
  as: Target;
  /** The CA that signed the API's TLS certificate (PEM), for Prometheus's `tls_config`. */
  caPem: string;
  /** GET a target's /metrics body. */
  scrape(target: Target): Promise<string>;
  /**
   * While true, the introspection endpoint answers 503: the introspection API's verifications
   * fail closed (503 introspection_unavailable, `dpop.outcome` error: the SLO's bad events).
   */
  introspectionDown: boolean;
  /** One round of demo-like traffic (a few dozen requests). */
  traffic(): Promise<TrafficCounts>;
  close(): Promise<void>;
}

/** Status codes seen in one round, by scenario. */
export type TrafficCounts = Record<string, number[]>;

/** A small text server on 127.0.0.1 (the AS's /metrics, the introspection endpoint). */
async function listen(handler: Parameters<typeof createServer>[1]): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const portOf = (server: Server) => (server.address() as AddressInfo).port;
const stop = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

function readBody(req: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/** Starts everything; `close()` stops it all. */
export async function startStack(): Promise<Stack> {
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const pki = await createTestPki();
    const tls = { keyPem: pki.server.keyPem, certPem: pki.server.certPem, caPem: pki.ca.certPem };
    const trusting = fetchTrusting(pki.ca.certPem) as FetchLike;

    // The authorization server: its token endpoint's verdicts go to a registry of its own,
    // served at http://127.0.0.1:<port>/metrics (a second scrape target).
    const asMetrics = new AuthMetrics();
    closers.push(() => asMetrics.close());
    const as: MinimalAuthorizationServer = await startMinimalAuthorizationServer({
      client: CLIENT,
      audience: AUDIENCE,
      onResult: asMetrics.onResult,
    });
    closers.push(() => as.close());
    const asMetricsServer = await listen(async (_req, res) => {
      res.setHeader('content-type', 'text/plain; version=0.0.4');
      res.end(await asMetrics.render());
    });
    closers.push(() => stop(asMetricsServer));

    // RFC 7662 introspection endpoint: verifies the AS's JWTs and answers their claims.
    const keys = createLocalJWKSet(as.jwks as never);
    const introspection = await listen(async (req, res) => {
      const body = new URLSearchParams(await readBody(req));
      res.setHeader('content-type', 'application/json');
      if (stack.introspectionDown) return void res.writeHead(503).end('{"error":"unavailable"}');
      if (
        req.headers.authorization !== `Basic ${btoa(`${INTROSPECTOR.id}:${INTROSPECTOR.secret}`)}`
      )
        return void res.writeHead(401).end('{"error":"invalid_client"}');
      try {
        const { payload } = await jwtVerify(body.get('token') ?? '', keys, {
          issuer: as.issuer,
          audience: AUDIENCE,
        });
        const bound = payload.cnf !== undefined;
        res.end(
          JSON.stringify({ active: true, ...payload, token_type: bound ? 'DPoP' : 'Bearer' }),
        );
      } catch {
        res.end('{"active":false}');
      }
    });
    closers.push(() => stop(introspection));

    // The example API (JWT access tokens from the AS's JWKS), over HTTPS.
    const nonceSecret = randomBytes(32).toString('base64url');
    const jwtPort = await freePort();
    const jwtUrl = `https://127.0.0.1:${jwtPort}`;
    const auth = buildAuthOptions({
      issuer: as.issuer,
      audience: AUDIENCE,
      publicUrl: jwtUrl,
      fetch: globalThis.fetch,
      nonceSecret,
      redisUrl: '',
      replay: new MemoryReplayStore({ maxEntries: 10_000 }),
    });
    closers.push(() => auth.close());
    const jwtApi: RunningApi = await startApi(auth, tls, jwtPort);
    closers.push(() => jwtApi.close());

    // The same API validating tokens by introspection; its verdicts go to the same registry.
    const introPort = await freePort();
    const introUrl = `https://127.0.0.1:${introPort}`;
    const introAuth: ApiAuth = {
      metrics: auth.metrics,
      close: async () => {},
      options: {
        ...auth.options,
        publicUrl: introUrl,
        replay: new MemoryReplayStore({ maxEntries: 10_000 }),
        accessToken: {
          introspection: {
            endpoint: `http://127.0.0.1:${portOf(introspection)}/introspect`,
            clientId: INTROSPECTOR.id,
            clientSecret: INTROSPECTOR.secret,
            issuer: as.issuer,
            audience: AUDIENCE,
            cacheTtl: 0, // every request is an introspection call (more data for the demo)
            negativeCacheTtl: 0,
          },
        },
      },
    };
    const introApi = await startApi(introAuth, tls, introPort);
    closers.push(() => introApi.close());

    const key = await generateKeyPair();
    const client = createDPoPFetch(key, { fetch: trusting });
    const tokenRequest = async (dpopKey: CryptoKeyPair) => {
      const res = await createDPoPFetch(dpopKey, { fetch: trusting })(`${as.issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${btoa(`${CLIENT.id}:${CLIENT.secret}`)}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      const json = (await res.json()) as { access_token: string };
      return json.access_token;
    };

    const traffic = async (): Promise<TrafficCounts> => {
      const seen: TrafficCounts = {};
      const note = async (name: string, res: Promise<Response> | Response) => {
        const r = await res;
        await r.arrayBuffer().catch(() => undefined);
        (seen[name] ??= []).push(r.status);
        return r;
      };
      // token requests (the first of a key meets a nonce challenge, then retries)
      const accessToken = await tokenRequest(key);
      await tokenRequest(await generateKeyPair());
      for (const base of [jwtUrl, introUrl]) {
        const api = `${base}/api/orders`;
        // valid calls (a nonce challenge on the first, answered by the client's retry)
        for (let i = 0; i < 8; i++) await note('valid', client(api, { accessToken }));
        // a replay of a captured request
        let captured = '';
        const tap = createDPoPFetch(key, {
          fetch: (async (input, init) => {
            captured = new Headers(init?.headers).get('dpop') ?? '';
            return trusting(input, init);
          }) as FetchLike,
        });
        await note('valid', tap(api, { accessToken }));
        const raw = (headers: Record<string, string>) => trusting(api, { headers });
        await note('replay', raw({ authorization: `DPoP ${accessToken}`, dpop: captured }));
        // a stolen token with the thief's own key
        const thief = createDPoPFetch(await generateKeyPair(), { fetch: trusting });
        await note('stolen', thief(api, { accessToken }));
        // the stolen token as a Bearer token
        await note('bearer', raw({ authorization: `Bearer ${accessToken}` }));
        // clients whose clock is off: 90 s and 4 minutes slow, 2 minutes fast (with the
        // server's nonce, so the proof's iat is checked against nonceIatSkew, 300 s)
        const challenge = await raw({
          authorization: `DPoP ${accessToken}`,
          dpop: await createProof(key, { method: 'GET', url: api, accessToken }),
        });
        await note('nonce', challenge);
        const nonce = challenge.headers.get('dpop-nonce') ?? undefined;
        for (const offset of [-90, -240, 120]) {
          const proof = await createProof(
            key,
            { method: 'GET', url: api, accessToken, ...(nonce ? { nonce } : {}) },
            { iat: Math.floor(Date.now() / 1000) + offset },
          );
          await note('clock', raw({ authorization: `DPoP ${accessToken}`, dpop: proof }));
        }
        // a forged proof signature, and a forged access-token signature
        const proof = await createProof(key, { method: 'GET', url: api, accessToken });
        const forged = proof.slice(0, -4) + (proof.endsWith('AAAA') ? 'BBBB' : 'AAAA');
        await note('forged-proof', raw({ authorization: `DPoP ${accessToken}`, dpop: forged }));
        const forgedToken =
          accessToken.slice(0, -4) + (accessToken.endsWith('AAAA') ? 'BBBB' : 'AAAA');
        await note('forged-token', client(api, { accessToken: forgedToken }));
        // a garbage token
        await note('garbage', client(api, { accessToken: randomBytes(24).toString('base64url') }));
      }
      return seen;
    };

    const stack: Stack = {
      introspectionDown: false,
      api: { job: 'popkit-api', address: `127.0.0.1:${jwtPort}`, scheme: 'https' },
      as: { job: 'popkit-as', address: `127.0.0.1:${portOf(asMetricsServer)}`, scheme: 'http' },
      caPem: pki.ca.certPem,
      scrape: async (target) => {
        const res = await trusting(`${target.scheme}://${target.address}/metrics`);
        return res.text();
      },
      traffic,
      close,
    };
    return stack;
  } catch (error) {
    await close();
    throw error;
  }
}
