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

export async function startRedis(port?: number): Promise<RedisServer> {
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
