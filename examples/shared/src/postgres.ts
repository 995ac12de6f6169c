import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  accessSync,
  chownSync,
  constants,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './binaries.ts';
import { freePort } from './redis.ts';

export const POSTGRES_INSTALL = 'apt-get update && apt-get install -y postgresql';

const executable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Absolute path of a PostgreSQL server binary (`initdb`, `postgres`): Debian keeps them in
 * /usr/lib/postgresql/<major>/bin, off PATH (the newest major wins); else PATH.
 */
export function findPostgresBinary(name: 'initdb' | 'postgres'): string | undefined {
  try {
    const majors = readdirSync('/usr/lib/postgresql')
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    for (const major of majors) {
      const path = `/usr/lib/postgresql/${major}/bin/${name}`;
      if (executable(path)) return path;
    }
  } catch {
    // not Debian's layout
  }
  return findBinary(name);
}

/** A real PostgreSQL server on a free loopback port, in a temporary data directory. */
export interface PostgresServer {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  url: string;
  /** The postmaster (its backends are its children). */
  process: ChildProcess;
  /**
   * Immediate shutdown (SIGQUIT: no checkpoint, so the restart runs crash recovery and empties
   * unlogged tables, as after a crash); SIGKILL to it and its backends after 2 s. The directory
   * stays.
   */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (crash recovery runs if it crashed). */
  restart(): Promise<void>;
  /** SIGSTOP to the postmaster and its backends: connections stay open, nothing answers. */
  pause(): void;
  /** SIGCONT to them. */
  resume(): void;
  /** Fast shutdown (SIGINT), SIGKILL after 5 s, then removes the data directory. */
  stop(): Promise<void>;
}

/** The `postgres` OS user's uid and gid when we run as root (PostgreSQL refuses root). */
function serverUser(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
    } catch {
      // no such user
    }
  }
  throw new Error('running as root, but there is no postgres (or nobody) user to run PostgreSQL');
}

/**
 * The PIDs of a process's children (PostgreSQL's backends make themselves session leaders,
 * so a process group does not reach them), from /proc.
 */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Sends `signal` to `pid` and its children, ignoring those already gone. */
function signalTree(pid: number, signal: NodeJS.Signals): void {
  const targets = signal === 'SIGCONT' ? [pid] : [];
  if (signal !== 'SIGCONT') {
    // the postmaster first, so it starts no new backend meanwhile
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
  for (const child of childrenOf(pid)) targets.push(child);
  for (const target of targets) {
    try {
      process.kill(target, signal);
    } catch {
      // gone
    }
  }
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((r) => child.once('exit', () => r()));

/**
 * Starts `initdb` then `postgres` (as the `postgres` OS user when we are root) in a fresh
 * temporary directory, listening on 127.0.0.1 only, socket in that directory, fsync off (a
 * killed server still keeps what it committed: the kernel holds it; `synchronous_commit` stays
 * on, so a logged table survives `kill()`).
 * Stopped by PID (the postmaster, then its backends); `stop()` removes the directory.
 */
export async function startPostgres(extraArgs: string[] = []): Promise<PostgresServer> {
  const initdb = findPostgresBinary('initdb');
  const postgres = findPostgresBinary('postgres');
  if (!initdb || !postgres)
    throw new Error(`PostgreSQL is not installed; install it with: ${POSTGRES_INSTALL}`);
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'popkit-pg-'));
  const data = join(dir, 'data');
  if (user) chownSync(dir, user.uid, user.gid);
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  try {
    execFileSync(
      initdb,
      ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--no-instructions'],
      { stdio: 'pipe', cwd: dir, env, ...(user ?? {}) },
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = String((error as { stderr?: unknown }).stderr ?? '');
    throw new Error(`initdb failed: ${stderr.slice(-500)}`);
  }
  const port = await freePort();
  const launch = async (): Promise<ChildProcess> => {
    const child = spawn(
      postgres,
      [
        '-D',
        data,
        '-p',
        String(port),
        '-h',
        '127.0.0.1',
        '-k',
        dir,
        '-c',
        'fsync=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, env, ...(user ?? {}) },
    );
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`postgres did not start: ${out.slice(-500)}`));
      }, 20_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`postgres exited with ${code}: ${out.slice(-500)}`));
      });
    });
    child.stdout!.resume();
    child.stderr!.resume();
    return child;
  };
  /** SIGKILL to the postmaster and every backend. */
  const killAll = async (child: ChildProcess) => {
    const backends = child.pid === undefined ? [] : childrenOf(child.pid);
    if (child.pid !== undefined) signalTree(child.pid, 'SIGKILL');
    await exited(child);
    for (const pid of backends) {
      for (let i = 0; i < 50; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  let first: ChildProcess;
  try {
    first = await launch();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  // if this process ends without stop() (a crash, an unhandled error), the server goes too
  const onExit = () => {
    if (server.process.pid !== undefined) signalTree(server.process.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const server: PostgresServer = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    process: first,
    async kill() {
      const child = server.process;
      child.kill('SIGQUIT');
      const timer = setTimeout(() => void killAll(child), 2000);
      await exited(child);
      clearTimeout(timer);
      await killAll(child);
    },
    async restart() {
      server.process = await launch();
    },
    pause: () => signalTree(server.process.pid!, 'SIGSTOP'),
    resume: () => signalTree(server.process.pid!, 'SIGCONT'),
    async stop() {
      process.off('exit', onExit);
      const child = server.process;
      if (child.exitCode === null && child.signalCode === null) {
        signalTree(child.pid!, 'SIGCONT'); // a paused server could not shut down
        child.kill('SIGINT');
        const timer = setTimeout(() => void killAll(child), 5000);
        await exited(child);
        clearTimeout(timer);
      }
      await killAll(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
