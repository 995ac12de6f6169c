import { createProof } from '@popkit/dpop-client';
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import type { RedisServer } from '../../../test-support/redis.ts';
import { REDIS_INSTALL, startRedis, startRedisCluster } from '../../../test-support/redis.ts';
import { RedisReplayStore } from '../src/redis/index.ts';
import type { VerifyProofOptions } from '../src/index.ts';
import { DPoPError, createProofVerifier } from '../src/index.ts';
import { URL_, clientKey } from './helpers.ts';

const available = requireBinary('redis-server', REDIS_INSTALL);

describe.skipIf(!available)('RedisReplayStore against a real redis-server', () => {
  let redis: RedisServer;
  const clients: Array<{ quit(): Promise<unknown> } | { disconnect(): void }> = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) {
      if ('disconnect' in c) c.disconnect();
    }
    await redis?.stop();
  });

  const ioredis = () => {
    const c = new Redis(redis.port, '127.0.0.1', {
      maxRetriesPerRequest: 1,
      retryStrategy: () => 50,
      lazyConnect: false,
    });
    c.on('error', () => {}); // outages are part of these tests
    clients.push(c);
    return c;
  };

  it('SET NX PX is atomic: with ioredis and node-redis, first use true, replay false, TTL from expiresAt', async () => {
    const io = new RedisReplayStore(ioredis(), { prefix: 't1:' });
    const nodeClient = createClient({ url: redis.url });
    await nodeClient.connect();
    const nr = new RedisReplayStore(nodeClient, { prefix: 't1:' });
    const expiresAt = Date.now() + 5000;
    expect(await io.useOnce('k1', expiresAt)).toBe(true);
    expect(await nr.useOnce('k1', expiresAt)).toBe(false);
    expect(await nr.useOnce('k2', expiresAt)).toBe(true);
    const ttl = await nodeClient.pTTL('t1:k2');
    expect(ttl).toBeGreaterThan(4000);
    expect(ttl).toBeLessThanOrEqual(5000);
    await nodeClient.quit();
  });

  it('two verifier instances sharing Redis accept one of many concurrent copies of a proof', async () => {
    const make = (): VerifyProofOptions => ({
      replay: new RedisReplayStore(ioredis(), { prefix: 'race:' }),
    });
    const [a, b] = [createProofVerifier(make()), createProofVerifier(make())];
    const k = await clientKey();
    for (let round = 0; round < 20; round++) {
      const proof = await createProof(k.keyPair, { method: 'GET', url: URL_ });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b)(proof, { method: 'GET', url: URL_ })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected') expect((r.reason as DPoPError).reason).toBe('replay');
    }
  });

  it('fails closed (503) while Redis is down or slow, and recovers when it is back', async () => {
    const client = ioredis();
    const verify = createProofVerifier({ replay: new RedisReplayStore(client, { timeout: 200 }) });
    const k = await clientKey();
    const attempt = async () =>
      verify(await createProof(k.keyPair, { method: 'GET', url: URL_ }), {
        method: 'GET',
        url: URL_,
      });
    await attempt();

    // slow: a paused server (SIGSTOP) never answers; the timeout bounds the wait
    redis.process.kill('SIGSTOP');
    const started = Date.now();
    const slow = await attempt().catch((e: unknown) => e);
    expect(slow).toBeInstanceOf(DPoPError);
    expect([(slow as DPoPError).code, (slow as DPoPError).status]).toEqual(['server_error', 503]);
    expect(Date.now() - started).toBeLessThan(1500);
    redis.process.kill('SIGCONT');

    await redis.kill();
    for (let i = 0; i < 3; i++) {
      const down = await attempt().catch((e: unknown) => e);
      expect((down as DPoPError).status).toBe(503);
    }
    await redis.restart();
    let recovered = false;
    for (let i = 0; i < 50 && !recovered; i++) {
      recovered = await attempt().then(
        () => true,
        () => false,
      );
      if (!recovered) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(true);
  });

  it('refuses to run on a Redis that can evict (volatile-lru), fails closed when full under noeviction, never accepts a proof twice', async () => {
    const k = await clientKey();
    const proofs = await Promise.all(
      Array.from({ length: 3 }, () => createProof(k.keyPair, { method: 'GET', url: URL_ })),
    );
    const expect_ = { method: 'GET', url: URL_ } as const;

    // 1. an evicting policy: the store refuses to operate at all, naming the setting
    const evicting = await startRedis(undefined, [
      '--maxmemory',
      '4mb',
      '--maxmemory-policy',
      'volatile-lru',
    ]);
    const c1 = new Redis(evicting.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    c1.on('error', () => {});
    try {
      const verify = createProofVerifier({
        replay: new RedisReplayStore(c1, { policyCheckInterval: 1000 }),
      });
      const refused = await verify(proofs[0]!, expect_).catch((e: unknown) => e as DPoPError);
      expect([refused.code, refused.status, refused.reason]).toEqual([
        'server_error',
        503,
        'replay_store_error',
      ]);
      expect(String((refused.cause as Error).message)).toMatch(
        /maxmemory-policy is "volatile-lru".*noeviction/,
      );
      expect(await c1.dbsize()).toBe(0); // nothing was written
      // the operator switches to noeviction: the store picks it up and works, once per proof
      await c1.config('SET', 'maxmemory-policy', 'noeviction');
      await new Promise((r) => setTimeout(r, 1100));
      await verify(proofs[0]!, expect_);
      await expect(verify(proofs[0]!, expect_)).rejects.toMatchObject({ reason: 'replay' });
      // an explicit operator guarantee is needed where CONFIG is unavailable
      const noConfig = { set: c1.set.bind(c1) } as never;
      await expect(new RedisReplayStore(noConfig).useOnce('x', Date.now() + 1000)).rejects.toThrow(
        /assumeNoEviction/,
      );
      expect(
        await new RedisReplayStore(noConfig, { assumeNoEviction: true }).useOnce(
          'x',
          Date.now() + 1000,
        ),
      ).toBe(true);
    } finally {
      c1.disconnect();
      await evicting.stop();
    }

    // 2. noeviction and a full memory: every new proof fails closed (503), replays stay refused,
    //    and the store recovers when memory frees
    const full = await startRedis(undefined, [
      '--maxmemory',
      '2mb',
      '--maxmemory-policy',
      'noeviction',
    ]);
    const c2 = new Redis(full.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    c2.on('error', () => {});
    try {
      const verify = createProofVerifier({ replay: new RedisReplayStore(c2) });
      await verify(proofs[1]!, expect_);
      const filler = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 200; i++) {
        const ok = await c2.set(`fill:${i}`, filler).then(
          () => true,
          () => false,
        );
        if (!ok) break;
      }
      await c2.config('SET', 'maxmemory', '1mb'); // now certainly over the limit
      const oom = await verify(proofs[2]!, expect_).catch((e: unknown) => e as DPoPError);
      expect([oom.code, oom.status, oom.headers['Retry-After']]).toEqual([
        'server_error',
        503,
        '1',
      ]);
      // the earlier proof is still remembered: a replay is refused, never accepted
      const again = await verify(proofs[1]!, expect_).catch((e: unknown) => e as DPoPError);
      expect(again).toBeInstanceOf(DPoPError);
      expect(again.code === 'invalid_dpop_proof' || again.status === 503).toBe(true);
      await c2.config('SET', 'maxmemory', '64mb'); // the operator adds memory: it recovers
      await verify(proofs[2]!, expect_);
      await expect(verify(proofs[1]!, expect_)).rejects.toMatchObject({ reason: 'replay' });
      await expect(verify(proofs[2]!, expect_)).rejects.toMatchObject({ reason: 'replay' });
    } finally {
      c2.disconnect();
      await full.stop();
    }
  });

  it('warns once when Redis has no persistence; with AOF, entries survive a Redis restart', async () => {
    const warnings: string[] = [];
    const plain = new RedisReplayStore(ioredis(), {
      prefix: 'p1:',
      onWarning: (m) => warnings.push(m),
    });
    expect(await plain.useOnce('k', Date.now() + 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(await plain.useOnce('k2', Date.now() + 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/no AOF persistence.*appendonly/);
    // the window it warns of: a Redis restart without persistence forgets the entry
    const forgetful = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'popkit-aof-'));
    const durable = await startRedis(undefined, [
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--dir',
      dir,
    ]);
    try {
      const expiresAt = Date.now() + 30_000;
      for (const [server, survives] of [
        [forgetful, false],
        [durable, true],
      ] as const) {
        const quiet: string[] = [];
        const client = new Redis(server.port, '127.0.0.1', {
          maxRetriesPerRequest: 1,
          retryStrategy: () => 50,
        });
        client.on('error', () => {});
        const store = new RedisReplayStore(client, { onWarning: (m) => quiet.push(m) });
        expect(await store.useOnce('captured', expiresAt)).toBe(true);
        await server.kill(); // a crash
        await server.restart();
        let answer: boolean | undefined;
        for (let i = 0; i < 50 && answer === undefined; i++) {
          answer = await store.useOnce('captured', expiresAt).catch(() => undefined);
          if (answer === undefined) await new Promise((r) => setTimeout(r, 100));
        }
        // without persistence the replay is accepted again; with AOF it is refused
        expect(answer).toBe(!survives);
        expect(quiet).toHaveLength(survives ? 0 : 1);
        client.disconnect();
      }
    } finally {
      await forgetful.stop();
      await durable.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates its options', () => {
    expect(() => new RedisReplayStore({} as never)).toThrow(/client/);
    expect(() => new RedisReplayStore(ioredis(), { timeout: 0 })).toThrow(/timeout/);
    expect(() => new RedisReplayStore(ioredis(), { assumeNoEviction: 1 as never })).toThrow(
      /assumeNoEviction/,
    );
  });
});

const clusterAvailable = available && requireBinary('redis-cli', REDIS_INSTALL);

describe.skipIf(!clusterAvailable)(
  'RedisReplayStore against a real three-node Redis Cluster',
  () => {
    it('ioredis Cluster and node-redis createCluster: atomic first use across the cluster', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'popkit-cluster-'));
      const cluster = await startRedisCluster(dir);
      const io = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
      io.on('error', () => {});
      const node = createCluster({
        rootNodes: cluster.ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
      });
      await node.connect();
      try {
        const [a, b] = [new RedisReplayStore(io), new RedisReplayStore(node)];
        const expiresAt = Date.now() + 10_000;
        // keys hash to different slots, so every master takes part
        for (let i = 0; i < 30; i++) {
          const results = await Promise.all([
            a.useOnce(`k${i}`, expiresAt),
            b.useOnce(`k${i}`, expiresAt),
          ]);
          expect(results.filter(Boolean)).toHaveLength(1);
        }
        const verify = createProofVerifier({ replay: a });
        const k = await clientKey();
        const proof = await createProof(k.keyPair, { method: 'GET', url: URL_ });
        await verify(proof, { method: 'GET', url: URL_ });
        await expect(
          createProofVerifier({ replay: b })(proof, { method: 'GET', url: URL_ }),
        ).rejects.toMatchObject({ reason: 'replay' });
      } finally {
        io.disconnect();
        await node.quit();
        await cluster.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
