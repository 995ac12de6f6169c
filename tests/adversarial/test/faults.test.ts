import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDPoPFetch, createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import type { DPoPFetchEvent } from '@popkit/dpop-client';
import { MemoryReplayStore, createNonceIssuer } from '@popkit/dpop-verifier';
import type { DPoPAuthOptions } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import { RedisReplayStore } from '@popkit/dpop-verifier/redis';
import type { RedisServer } from '@popkit/example-shared/redis';
import { startRedis } from '@popkit/example-shared/redis';
import express from 'express';
import { Redis } from 'ioredis';
import { SignJWT, createRemoteJWKSet, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import { REDIS_INSTALL } from '../../../test-support/redis.ts';

const PUBLIC = 'https://api.faults.example';
let signer: CryptoKey;
let jwks: { keys: object[] };

beforeAll(async () => {
  const pair = await joseKeyPair('ES256');
  signer = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] };
});

const mint = async (jkt: string, kid = 'k1', key = signer) =>
  new SignJWT({ cnf: { jkt } })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
    .setIssuer('https://as')
    .setAudience('https://rs')
    .setExpirationTime('10m')
    .sign(key);

async function listen(app: express.Express): Promise<{ url: string; server: Server }> {
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function api(
  options: Partial<DPoPAuthOptions>,
  extra?: (app: express.Express) => void,
): express.Express {
  const app = express();
  extra?.(app);
  app.use(
    dpopAuth({
      accessToken: { issuer: 'https://as', audience: 'https://rs', jwks: jwks as never },
      publicUrl: PUBLIC,
      replay: new MemoryReplayStore(),
      ...options,
    } as DPoPAuthOptions),
  );
  app.get('/r', (_req, res) => res.json({ ok: true }));
  return app;
}

const haveRedis = requireBinary('redis-server', REDIS_INSTALL);

describe.skipIf(!haveRedis)('Redis outage under load, two instances', () => {
  let redis: RedisServer;
  const servers: Server[] = [];
  const clients: Redis[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const s of servers) s.close();
    for (const c of clients) c.disconnect();
    await redis.stop().catch(() => undefined);
  });

  it('rejects (503) during the outage, never accepts a proof twice, recovers after restart; a paused Redis fails closed within the timeout', async () => {
    const secret = randomBytes(32);
    const instance = async () => {
      const client = new Redis(redis.port, '127.0.0.1', {
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => 50,
      });
      client.on('error', () => {});
      clients.push(client);
      const { url, server } = await listen(
        api({
          replay: new RedisReplayStore(client, { timeout: 200 }),
          nonces: createNonceIssuer({ secret }),
        }),
      );
      servers.push(server);
      return url;
    };
    const [a, b] = [await instance(), await instance()];
    const key = await generateKeyPair();
    const token = await mint(await thumbprint(key));
    const nonces = createNonceIssuer({ secret });
    let phase: 'before' | 'outage' | 'after' = 'before';
    const log: Array<{ phase: string; status: number; proof: string; at: number }> = [];
    const accepted = new Map<string, number>();
    let stop = false;
    const worker = async (n: number) => {
      while (!stop) {
        const proof = await createProof(key, {
          method: 'GET',
          url: `${PUBLIC}/r`,
          accessToken: token,
          nonce: await nonces.current(),
        });
        // each proof goes to both instances at once: at most one may accept it
        const results = await Promise.all(
          [a, b].map((base) =>
            fetch(`${base}/r`, { headers: { authorization: `DPoP ${token}`, dpop: proof } }).then(
              async (r) => (await r.arrayBuffer(), r.status),
              () => 0,
            ),
          ),
        );
        for (const status of results) {
          log.push({ phase, status, proof, at: Date.now() });
          if (status === 200) accepted.set(proof, (accepted.get(proof) ?? 0) + 1);
        }
        if (n < 0) break;
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    await new Promise((r) => setTimeout(r, 1000));
    await redis.kill();
    await new Promise((r) => setTimeout(r, 300)); // requests in flight at the kill may still finish
    phase = 'outage';
    await new Promise((r) => setTimeout(r, 1200));
    phase = 'after';
    await redis.restart();
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      await new Promise((r) => setTimeout(r, 100));
      recovered = log.some((l) => l.phase === 'after' && l.status === 200);
    }
    stop = true;
    await load;
    const outage = log.filter((l) => l.phase === 'outage');
    expect(log.filter((l) => l.phase === 'before' && l.status === 200).length).toBeGreaterThan(10);
    expect(outage.length).toBeGreaterThan(10);
    expect(outage.filter((l) => l.status === 200)).toEqual([]);
    expect(new Set(outage.map((l) => l.status))).toEqual(new Set([503]));
    expect([...accepted.values()].filter((n) => n > 1)).toEqual([]);
    expect(recovered).toBe(true);

    // slowed: a paused Redis never answers; every request fails closed within the 200 ms timeout
    redis.process.kill('SIGSTOP');
    try {
      const started = Date.now();
      const proof = await createProof(key, {
        method: 'GET',
        url: `${PUBLIC}/r`,
        accessToken: token,
        nonce: await nonces.current(),
      });
      const res = await fetch(`${a}/r`, {
        headers: { authorization: `DPoP ${token}`, dpop: proof },
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      redis.process.kill('SIGCONT');
    }
  });
});

describe('authorization server JWKS endpoint down', () => {
  it('cached keys keep working, an unknown kid is rejected, a new key works once the endpoint is back', async () => {
    let down = false;
    let keys = jwks;
    const jwksApp = express();
    jwksApp.get('/jwks', (_req, res) => (down ? res.status(503).end() : res.json(keys)));
    const jwksServer = await listen(jwksApp);
    const remote = createRemoteJWKSet(new URL(`${jwksServer.url}/jwks`), {
      cooldownDuration: 0,
      timeoutDuration: 500,
    });
    const { url, server } = await listen(
      api({
        accessToken: { issuer: 'https://as', audience: 'https://rs', jwks: remote, cacheSize: 0 },
      }),
    );
    const key = await generateKeyPair();
    const jkt = await thumbprint(key);
    // publicUrl is PUBLIC: sign proofs for it and send them through a fetch that rewrites the URL
    const callPublic = async (token: string) =>
      (
        await createDPoPFetch(key, {
          fetch: (input, init) => fetch(String(input).replace(PUBLIC, url), init),
        })(`${PUBLIC}/r`, { accessToken: token })
      ).status;
    expect(await callPublic(await mint(jkt))).toBe(200); // JWKS fetched and cached
    down = true;
    expect(await callPublic(await mint(jkt))).toBe(200); // a new token, cached key
    const rotated = await joseKeyPair('ES256');
    const unknown = await callPublic(await mint(jkt, 'k2', rotated.privateKey));
    expect([401, 503]).toContain(unknown);
    down = false;
    keys = {
      keys: [...jwks.keys, { ...(await exportJWK(rotated.publicKey)), kid: 'k2', alg: 'ES256' }],
    };
    expect(await callPublic(await mint(jkt, 'k2', rotated.privateKey))).toBe(200);
    server.close();
    jwksServer.server.close();
  });
});

describe('client and server clocks 5 minutes apart', () => {
  for (const skew of [300, -300]) {
    it(`server clock ${skew > 0 ? 'ahead' : 'behind'}: popkit's client learns the offset; with nonces a foreign client recovers through use_dpop_nonce`, async () => {
      const skewed = () => Date.now() + skew * 1000;
      const dateHeader = (app: express.Express) =>
        app.use(
          (_req, res, next) => (res.setHeader('Date', new Date(skewed()).toUTCString()), next()),
        );
      const withoutNonces = await listen(api({ now: skewed }, dateHeader));
      const key = await generateKeyPair();
      const token = await mint(await thumbprint(key));
      const events: DPoPFetchEvent[] = [];
      const viaPublic = (base: string) => ({
        fetch: (input: string | URL | Request, init?: RequestInit) =>
          fetch(String(input).replace(PUBLIC, base), init),
        onEvent: (e: DPoPFetchEvent) => events.push(e),
      });
      const popkit = createDPoPFetch(key, viaPublic(withoutNonces.url));
      expect((await popkit(`${PUBLIC}/r`, { accessToken: token })).status).toBe(200);
      const offset = events.find((e) => e.type === 'clock-offset') as
        { offset: number } | undefined;
      expect(Math.abs(offset!.offset - skew)).toBeLessThanOrEqual(2);
      events.length = 0;
      expect((await popkit(`${PUBLIC}/r`, { accessToken: token })).status).toBe(200);
      expect(events.filter((e) => e.type === 'retry')).toEqual([]); // the offset is remembered

      // a foreign client (oauth4webapi) that knows nothing of the offset, against a server with nonces
      const withNonces = await listen(
        api({ now: skewed, nonces: createNonceIssuer({ secret: randomBytes(32) }) }, dateHeader),
      );
      const o4wKey = await oauth.generateKeyPair('ES256');
      const o4wToken = await mint(await thumbprint(o4wKey));
      const DPoP = oauth.DPoP({ client_id: 'c' } as oauth.Client, o4wKey);
      const options: oauth.ProtectedResourceRequestOptions = {
        DPoP,
        [oauth.customFetch]: (input, init) =>
          fetch(input.replace(PUBLIC, withNonces.url), init as RequestInit),
      };
      const target = new URL(`${PUBLIC}/r`);
      let first: unknown;
      try {
        await oauth.protectedResourceRequest(o4wToken, 'GET', target, new Headers(), null, options);
      } catch (e) {
        first = e;
      }
      expect(oauth.isDPoPNonceError(first)).toBe(true);
      // its retry carries the nonce, which bounds freshness: the 5-minute skew no longer matters
      const retried = await oauth.protectedResourceRequest(
        o4wToken,
        'GET',
        target,
        new Headers(),
        null,
        options,
      );
      expect(retried.status).toBe(200);
      withoutNonces.server.close();
      withNonces.server.close();
    });
  }
});
