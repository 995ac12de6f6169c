import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { findBinary } from './binaries.ts';
import type { AddressInfo } from 'node:net';

export const REDIS_INSTALL = 'apt-get update && apt-get install -y redis-server';

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A real redis-server on a free loopback port, with no persistence; stopped by its PID. */
export interface RedisServer {
  port: number;
  url: string;
  process: ChildProcess;
  /** SIGKILL, as in a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(port?: number, extraArgs: string[] = []): Promise<RedisServer> {
  const binary = findBinary('redis-server');
  if (!binary) throw new Error(`redis-server is not installed; install it with: ${REDIS_INSTALL}`);
  const chosen = port ?? (await freePort());
  const launch = async (): Promise<ChildProcess> => {
    const child = spawn(
      binary,
      [
        '--port',
        String(chosen),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        ...extraArgs,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start: ${out.slice(-500)}`)),
        10_000,
      );
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${out.slice(-500)}`));
      });
    });
    child.stdout!.resume();
    return child;
  };
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => child.once('exit', () => r()));
  const server: RedisServer = {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    process: await launch(),
    async kill() {
      server.process.kill('SIGKILL');
      await exited(server.process);
    },
    async restart() {
      server.process = await launch();
    },
    async stop() {
      server.process.kill('SIGTERM');
      await exited(server.process);
    },
  };
  return server;
}

/** A real three-master Redis Cluster on loopback (redis-server --cluster-enabled + redis-cli --cluster create). */
export interface RedisCluster {
  ports: number[];
  stop(): Promise<void>;
}

/** Whether a loopback port can be bound right now. */
async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster-bus port (port + 10000) is valid and free too. */
async function clusterPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if ((await canBind(port)) && (await canBind(port + 10000))) return port;
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

export async function startRedisCluster(dir: string): Promise<RedisCluster> {
  const cli = findBinary('redis-cli');
  if (!cli) throw new Error(`redis-cli is not installed; install it with: ${REDIS_INSTALL}`);
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await clusterPort();
    nodes.push(
      await startRedis(port, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--dir',
        dir,
      ]),
    );
  }
  const { execFileSync } = await import('node:child_process');
  try {
    execFileSync(
      cli,
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdio: 'pipe', encoding: 'utf8' },
    );
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw new Error(
      `redis-cli --cluster create failed: ${String((error as { stdout?: string }).stdout ?? '').slice(-400)}`,
    );
  }
  for (let i = 0; i < 100; i++) {
    const info = execFileSync(cli, ['-p', String(nodes[0]!.port), 'cluster', 'info'], {
      encoding: 'utf8',
    });
    if (info.includes('cluster_state:ok')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ports: nodes.map((n) => n.port),
    stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))),
  };
}
