import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { describe } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import { REDIS_INSTALL, startRedis, startRedisCluster } from '../../../test-support/redis.ts';
import { RedisReplayStore } from '../src/redis/index.ts';
import { replayStoreContract } from './replay-contract.ts';

const available = requireBinary('redis-server', REDIS_INSTALL);

/** A TCP server that answers every command with `+QUEUED`: a Redis-shaped wrong answer. */
async function liar(): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('data', () => socket.write('+QUEUED\r\n'));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

describe.skipIf(!available)('Redis', () => {
  replayStoreContract(
    'RedisReplayStore, standalone (ioredis and node-redis)',
    async () => {
      const redis = await startRedis();
      const io = new Redis(redis.port, '127.0.0.1', {
        maxRetriesPerRequest: 1,
        retryStrategy: () => 50,
      });
      io.on('error', () => {});
      const nr = createClient({
        url: redis.url,
        socket: { reconnectStrategy: () => 50, connectTimeout: 500 },
      });
      nr.on('error', () => {});
      await nr.connect();
      const fake = await liar();
      const fakeClient = new Redis((fake.address() as AddressInfo).port, '127.0.0.1', {
        maxRetriesPerRequest: 1,
        enableReadyCheck: false,
      });
      fakeClient.on('error', () => {});
      const opts = { timeout: 1000, onWarning: () => {} }; // a busy CI machine
      const garbage = (answer: unknown) =>
        new RedisReplayStore({ set: async () => answer } as never, { assumeNoEviction: true });
      return {
        a: new RedisReplayStore(io, opts),
        b: new RedisReplayStore(nr, opts),
        size: () => io.dbsize(),
        lateMs: 0,
        faults: {
          pause: async () => {
            redis.process.kill('SIGSTOP');
            return async () => void redis.process.kill('SIGCONT');
          },
          down: async () => {
            await redis.kill();
            return () => redis.restart();
          },
          garbage: () => [
            new RedisReplayStore(fakeClient, { ...opts, assumeNoEviction: true }),
            ...['QUEUED', 'ok', 1, 0, true, {}, [], undefined, ''].map(garbage),
          ],
        },
        close: async () => {
          io.disconnect();
          fakeClient.disconnect();
          await nr.quit().catch(() => nr.destroy());
          await new Promise((r) => fake.close(r));
          await redis.stop();
        },
      };
    },
    { withFaults: true },
  );
});

const clusterAvailable = available && requireBinary('redis-cli', REDIS_INSTALL);

describe.skipIf(!clusterAvailable)('Redis Cluster', () => {
  replayStoreContract('RedisReplayStore, three-node cluster (ioredis and node-redis)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'popkit-cluster-'));
    const cluster = await startRedisCluster(dir);
    const io = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    io.on('error', () => {});
    const nr = createCluster({
      rootNodes: cluster.ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
    });
    await nr.connect();
    return {
      a: new RedisReplayStore(io, { timeout: 1000 }),
      b: new RedisReplayStore(nr, { timeout: 1000 }),
      size: async () => {
        const sizes = await Promise.all(io.nodes('master').map((n) => n.dbsize()));
        return sizes.reduce((x, y) => x + y, 0);
      },
      lateMs: 0,
      close: async () => {
        io.disconnect();
        await nr.quit();
        await cluster.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
});
