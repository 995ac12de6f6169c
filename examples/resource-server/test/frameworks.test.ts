import { randomBytes } from 'node:crypto';
import { createDPoPFetch, generateKeyPair } from '@popkit/dpop-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MinimalAuthorizationServer } from '../../authorization-server/src/minimal.ts';
import { startMinimalAuthorizationServer } from '../../authorization-server/src/minimal.ts';
import { createTestPki } from '../../shared/src/pki.ts';
import { fetchTrusting } from '../../shared/src/tls.ts';
import { startApi } from '../src/express.ts';
import { createFastifyApi } from '../src/fastify.ts';
import { createHonoApi } from '../src/hono.ts';
import { buildAuthOptions } from '../src/options.ts';

let as: MinimalAuthorizationServer;
let pki: Awaited<ReturnType<typeof createTestPki>>;
const AUDIENCE = 'https://api.example';
const basic = `Basic ${btoa('svc:secret')}`;

beforeAll(async () => {
  as = await startMinimalAuthorizationServer({
    client: { id: 'svc', secret: 'secret' },
    audience: AUDIENCE,
  });
  pki = await createTestPki();
});
afterAll(() => as.close());

async function token(key: CryptoKeyPair) {
  const res = await createDPoPFetch(key)(`${as.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

describe('the example API on Express, Fastify and Hono', () => {
  it('each framework accepts the bound token and refuses a thief, and /metrics counts both', async () => {
    const trusting = fetchTrusting(pki.ca.certPem);
    const key = await generateKeyPair();
    const thief = await generateKeyPair();
    const accessToken = await token(key);
    const check = async (base: string, publicUrl: string, metrics: () => Promise<string>) => {
      const ok = await createDPoPFetch(key, { fetch: trusting as never })(`${base}/api/orders`, {
        accessToken,
      });
      expect(ok.status).toBe(200);
      const stolen = await createDPoPFetch(thief, { fetch: trusting as never })(
        `${base}/api/orders`,
        { accessToken },
      );
      expect(stolen.status).toBe(401);
      const text = await metrics();
      expect(text).toMatch(
        /dpop_verification_duration_count\{dpop_outcome="accepted",dpop_scheme="DPoP",dpop_endpoint="resource",dpop_alg="ES256"[^}]*\} 1\n/,
      );
      expect(text).toMatch(/dpop_outcome="rejected"[^}]*dpop_reason="jkt_mismatch"[^}]*\} 1\n/);
      expect(text).toMatch(
        /dpop_jwks_duration_count\{dpop_jwks_result="ok",dpop_jwks_trigger="initial"/,
      );
      void publicUrl;
    };
    const options = (publicUrl: string) =>
      buildAuthOptions({
        issuer: as.issuer,
        audience: AUDIENCE,
        publicUrl,
        fetch: globalThis.fetch,
        nonceSecret: randomBytes(32).toString('hex'),
        redisUrl: '',
      });

    // Express over HTTPS
    const { freePort } = await import('../../shared/src/redis.ts');
    const port = await freePort();
    const expressAuth = options(`https://127.0.0.1:${port}`);
    const api = await startApi(
      expressAuth,
      { keyPem: pki.server.keyPem, certPem: pki.server.certPem, caPem: pki.ca.certPem },
      port,
    );
    await check(api.url, api.url, async () => (await trusting(`${api.url}/metrics`)).text());
    await api.close();

    // Fastify over HTTPS
    const fport = await freePort();
    const fastifyAuth = options(`https://127.0.0.1:${fport}`);
    const fastify = await createFastifyApi(fastifyAuth, {
      key: pki.server.keyPem,
      cert: pki.server.certPem,
      ca: pki.ca.certPem,
    });
    await fastify.listen({ port: fport, host: '127.0.0.1' });
    await check(`https://127.0.0.1:${fport}`, '', async () =>
      (await trusting(`https://127.0.0.1:${fport}/metrics`)).text(),
    );
    await fastify.close();

    // Hono through app.request (a Web Request; any runtime)
    const honoAuth = options('https://hono.example');
    const hono = createHonoApi(honoAuth);
    const viaHono = (async (input: string | URL | Request, init?: RequestInit) =>
      hono.request(String(input), init)) as never;
    const ok = await createDPoPFetch(key, { fetch: viaHono })('https://hono.example/api/orders', {
      accessToken,
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ scheme: 'DPoP', owner: 'svc' });
    expect(
      (
        await createDPoPFetch(thief, { fetch: viaHono })('https://hono.example/api/orders', {
          accessToken,
        })
      ).status,
    ).toBe(401);
    expect(await (await hono.request('https://hono.example/metrics')).text()).toMatch(
      /dpop_reason="jkt_mismatch"[^}]*\} 1\n/,
    );
  });
});
