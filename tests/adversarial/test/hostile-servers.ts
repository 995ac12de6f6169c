// Hostile-server harness: real Express 4 and 5, Fastify and Hono servers protected by popkit, each
// in a child process of its own, so that a crash is seen as the child's exit (and fails the test)
// instead of killing vitest.
//
// Every server exposes `GET /health` without authentication and `/api/*` behind popkit with a
// catch-all handler for every method that counts its runs. What surrounds popkit is
// configurable: the token validator (a slow RFC 7662 introspection endpoint, or an instant local
// hook), a request-timeout layer that answers 503 on its own, a CORS layer, and an `onResult`
// that throws. To add a scenario: start a server with `startHostileServer`, attack it, then call
// `assertAlive` and look at `runs()` and `complaints()`.
//
// The same file is the child's entry: run with POPKIT_HOSTILE_CHILD=1 it builds the server from
// the JSON configuration in argv[2] and talks to the parent over IPC.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The frameworks a hostile server can run on. */
export type Framework = 'express5' | 'express4' | 'fastify' | 'hono';
export const FRAMEWORKS: readonly Framework[] = ['express5', 'express4', 'fastify', 'hono'];

/** The `iss` and `aud` the servers expect from introspection. */
export const ISSUER = 'https://as.hostile.example';
export const AUDIENCE = 'https://rs.hostile.example';
/** The one origin the CORS layers allow. */
export const ALLOWED_ORIGIN = 'https://app.hostile.example';
/** Header (and body) that only the application handler sets: its presence means it ran. */
export const HANDLER_HEADER = 'x-handler-ran';

/** How a hostile server is built. */
export interface HostileServerConfig {
  framework: Framework;
  /**
   * An RFC 7662 endpoint (see {@link startSlowIntrospection}); without one, tokens are checked
   * by an instant local hook. Either way `live.<jkt>.<anything>` is an active token bound to
   * the key `<jkt>` and every other token is refused.
   */
  introspection?: string;
  /**
   * A request-timeout layer that answers 503 after this many ms: Express, a middleware that
   * answers (`timeoutStyle` 'answer') or, like `connect-timeout`, calls `next(error)` for the
   * error handler to answer ('next-error'); Fastify, its `handlerTimeout`; Hono, `hono/timeout`.
   */
  timeoutMs?: number;
  timeoutStyle?: 'answer' | 'next-error';
  /**
   * A CORS layer in front of popkit (`cors`, `@fastify/cors`, `hono/cors`): 'allow' grants
   * {@link ALLOWED_ORIGIN}; 'deny' grants no origin (a dynamic origin check that says no);
   * 'continue' grants it but hands preflights on (`preflightContinue`; Express and Fastify).
   */
  cors?: 'allow' | 'deny' | 'continue';
  /** An `onResult` (metrics) callback that throws on every call. */
  throwingOnResult?: boolean;
  /**
   * Certificate-bound tokens on `Bearer`, the certificate read from a TLS-terminating proxy's
   * header (`certificateThumbprintSource({ from: 'headers', proxy, ...options })`); with the
   * instant local hook, `cert.<x5t#S256>.…` is then an active token bound to that certificate.
   */
  certificate?: { proxy: string; options?: Record<string, unknown> };
}

/** One run of the application handler behind popkit. */
export interface HandlerRun {
  method: string;
  path: string;
  /** Whether popkit had set the request's authentication result. */
  authenticated: boolean;
}

/** A running hostile server (a child process). */
export interface HostileServer {
  readonly config: HostileServerConfig;
  readonly url: string;
  readonly pid: number;
  /** The child's exit, once it happened (a crash, or `stop`). */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Every run of the `/api/*` handler so far. */
  runs(): Promise<HandlerRun[]>;
  /** `onResult` outcomes so far (a verification finished, refused or accepted). */
  results(): Promise<number>;
  /** Resolves once `onResult` was called `count` times in all (or rejects after `ms`). */
  resultsReach(count: number, ms?: number): Promise<void>;
  /** Everything the child wrote to stdout and stderr. */
  output(): string;
  /** Where the output ends now: pass it to `complaints` to see one scenario's only. */
  mark(): number;
  /** Lines of the output (from `since`) that show a late write or a crash (should be none). */
  complaints(since?: number): string[];
  /** Kills the child's process group and waits for its exit. */
  stop(): Promise<void>;
}

/** Output that shows a write to a finished response, an unhandled error, or a framework's warning. */
export const COMPLAINTS =
  /ERR_HTTP_HEADERS_SENT|ERR_STREAM_WRITE_AFTER_END|FST_ERR_REP_ALREADY_SENT|Reply was already sent|Context is not finalized|Unhandled|uncaught|ERR_INVALID_CHAR|TypeError|RangeError/i;

const CHILD_FILE = fileURLToPath(import.meta.url);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const running = new Set<HostileServer>();
let exitHookInstalled = false;

/**
 * Starts a hostile server in a child process of its own (a process group, killed whole by
 * `stop`). Rejects if the child exits or does not listen within 20 s.
 */
export async function startHostileServer(config: HostileServerConfig): Promise<HostileServer> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // no child outlives the test process, even when it fails hard
    process.once('exit', () => {
      for (const server of running) killGroup(server.pid);
    });
  }
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', TSX, CHILD_FILE, JSON.stringify(config)],
    {
      detached: true, // its own process group: killed with everything it started
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, POPKIT_HOSTILE_CHILD: '1', NODE_ENV: 'production' },
    },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let exit: HostileServer['exit'];
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const pending = new Map<number, (value: unknown) => void>();
  let resultCount = 0;
  const resultWaiters: Array<() => void> = [];
  let nextId = 1;
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listen in 20 s: ${output}`)), 20_000);
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.port);
      } else if (m.type === 'result') {
        resultCount++;
        for (const wake of resultWaiters.splice(0)) wake();
      } else if (m.type === 'reply') {
        pending.get(m.id)?.(m.value);
        pending.delete(m.id);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the ${config.framework} server exited before listening: ${output}`));
    });
  });
  const ask = async <T>(question: 'runs'): Promise<T> => {
    if (exit !== undefined) throw new Error(`the server has exited (${describeExit(exit)})`);
    const id = nextId++;
    const answer = new Promise<unknown>((resolve) => pending.set(id, resolve));
    child.send({ type: question, id });
    return (await within(answer, 2000, `no IPC answer from the ${config.framework} server`)) as T;
  };
  const port = await ready;
  const server: HostileServer = {
    config,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    get exit() {
      return exit;
    },
    runs: () => ask<HandlerRun[]>('runs'),
    results: async () => resultCount,
    async resultsReach(count, ms = 5000) {
      const deadline = Date.now() + ms;
      while (resultCount < count) {
        if (exit !== undefined) throw new Error(`the server exited: ${describeExit(exit)}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`onResult was called ${resultCount} times, not ${count}`);
        await within(
          new Promise<void>((r) => resultWaiters.push(r)),
          left,
          `onResult was called ${resultCount} times, not ${count}`,
        ).catch(() => undefined);
      }
    },
    output: () => output,
    mark: () => output.length,
    complaints: (since = 0) =>
      output
        .slice(since)
        .split('\n')
        .filter((line) => COMPLAINTS.test(line)),
    async stop() {
      running.delete(server);
      if (exit === undefined) killGroup(child.pid!);
      await within(exited, 5000, 'the child did not exit after SIGKILL');
    },
  };
  running.add(server);
  return server;
}

/**
 * The liveness check after a hostile scenario: the child has not exited, and `GET /health`
 * (unauthenticated) answers `ok` within 100 ms. One slow answer is retried twice (a shared
 * 2-core machine may pause a process); a crashed or hung server fails every try.
 */
export async function assertAlive(server: HostileServer, scenario: string): Promise<void> {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    if (server.exit !== undefined) {
      throw new Error(
        `${server.config.framework} after "${scenario}": the server process exited (${describeExit(server.exit)}):\n${server.output()}`,
      );
    }
    const started = performance.now();
    try {
      const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(100) });
      const text = await res.text();
      if (res.status === 200 && text === 'ok') return;
      failures.push(`status ${res.status} ${text}`);
    } catch (error) {
      failures.push(`${(error as Error).name} after ${Math.round(performance.now() - started)} ms`);
    }
  }
  throw new Error(
    `${server.config.framework} after "${scenario}": /health did not answer within 100 ms (${failures.join('; ')}):\n${server.output()}`,
  );
}

/** A slow RFC 7662 introspection endpoint on 127.0.0.1. */
export interface SlowIntrospection {
  readonly url: string;
  /** Calls received so far. */
  readonly calls: number;
  close(): Promise<void>;
}

/**
 * An introspection endpoint that answers every call after `delayMs`: `live.<jkt>.…` tokens are
 * active and bound to `<jkt>`, every other token is inactive.
 */
export async function startSlowIntrospection(delayMs: number): Promise<SlowIntrospection> {
  let calls = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    calls++;
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      const [kind, jkt] = token.split('.');
      const answer =
        kind === 'live' && jkt
          ? {
              active: true,
              iss: ISSUER,
              aud: AUDIENCE,
              sub: 'user-1',
              token_type: 'DPoP',
              exp: Math.floor(Date.now() / 1000) + 300,
              cnf: { jkt },
            }
          : { active: false };
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer));
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`,
    get calls() {
      return calls;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  return exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
}

async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type ChildMessage =
  | { type: 'ready'; port: number }
  | { type: 'result' }
  | { type: 'reply'; id: number; value: unknown };

// ---------------------------------------------------------------------------------------------
// The child: builds one server from the configuration and reports over IPC. It installs no
// uncaughtException or unhandledRejection handler: Node's defaults (print, exit) are what the
// parent must observe.

async function child(config: HostileServerConfig): Promise<void> {
  const { MemoryReplayStore } = await import('@popkit/dpop-verifier');
  const runs: HandlerRun[] = [];
  const send = (message: ChildMessage) => process.send?.(message);
  process.on('message', (m: { type: 'runs'; id: number }) => {
    if (m.type === 'runs') send({ type: 'reply', id: m.id, value: runs });
  });
  process.on('disconnect', () => process.exit(0)); // the parent is gone

  const accessToken = config.introspection
    ? {
        introspection: {
          endpoint: config.introspection,
          clientId: 'hostile-rs',
          clientSecret: 'hostile-rs-secret',
          issuer: ISSUER,
          audience: AUDIENCE,
          cacheTtl: 0,
          negativeCacheTtl: 0,
          // A loaded machine (CI, other suites) delays every request; the fair shares under test
          // decide who is served, so a user's turn may come late without counting as starved.
          // (The code before the fair shares refused at once when the slots were full: this
          // does not make it pass.)
          queueTimeout: 3000,
        },
      }
    : (token: string) => {
        const [kind, bound] = token.split('.');
        if (kind === 'cert' && bound) return { sub: 'service-1', cnf: { 'x5t#S256': bound } };
        if (kind !== 'live' || !bound) throw new Error('unknown token');
        return { sub: 'user-1', cnf: { jkt: bound } };
      };
  const certificate = config.certificate
    ? (await import('@popkit/mtls-binding/node')).certificateThumbprintSource({
        from: 'headers',
        proxy: config.certificate.proxy,
        ...config.certificate.options,
      } as never)
    : undefined;
  const options = {
    accessToken,
    replay: new MemoryReplayStore({ maxEntries: 100_000 }),
    dangerouslyTrustRequestUrl: true, // 127.0.0.1 on an ephemeral port (tests only)
    ...(certificate ? { certificate } : {}),
    onResult: () => {
      send({ type: 'result' });
      if (config.throwingOnResult) throw new Error('metrics backend down');
    },
  };
  const ran = (method: string, path: string, authenticated: boolean) =>
    runs.push({ method, path, authenticated });

  let port: number;
  if (config.framework === 'express5' || config.framework === 'express4') {
    port = await expressServer(config, options, ran);
  } else if (config.framework === 'fastify') {
    port = await fastifyServer(config, options, ran);
  } else {
    port = await honoServer(config, options, ran);
  }
  send({ type: 'ready', port });
}

type Ran = (method: string, path: string, authenticated: boolean) => void;
type Options = import('@popkit/dpop-verifier').DPoPAuthOptions;

async function expressServer(config: HostileServerConfig, options: Options, ran: Ran) {
  // ('express4' is express@4 under another name, without types of its own)
  const specifier: string = config.framework === 'express4' ? 'express4' : 'express';
  const express = ((await import(specifier)) as { default: typeof import('express') }).default;
  const { dpopAuth } = await import('@popkit/dpop-verifier/express');
  const app = express();
  app.get('/health', (_req, res) => {
    res.send('ok');
  });
  if (config.timeoutMs !== undefined) {
    const ms = config.timeoutMs;
    if (config.timeoutStyle === 'next-error') {
      // connect-timeout: the timer hands a 503 error to the error handler
      app.use((req, _res, next) => {
        const timer = setTimeout(() => {
          (req as { timedout?: boolean }).timedout = true;
          next(Object.assign(new Error('Response timeout'), { status: 503 }));
        }, ms);
        req.socket.once('close', () => clearTimeout(timer));
        _res.once('finish', () => clearTimeout(timer));
        next();
      });
    } else {
      app.use((_req, res, next) => {
        const timer = setTimeout(() => {
          if (!res.headersSent) res.status(503).type('text/plain').send('request timed out');
        }, ms);
        res.once('close', () => clearTimeout(timer));
        next();
      });
    }
  }
  if (config.cors !== undefined) {
    const { default: cors } = await import('cors');
    app.use(
      cors({
        origin:
          config.cors === 'deny'
            ? (_origin: string | undefined, cb: (e: Error | null, allow?: boolean) => void) =>
                cb(null, false)
            : ALLOWED_ORIGIN,
        preflightContinue: config.cors === 'continue',
      }),
    );
  }
  app.use('/api', dpopAuth(options));
  app.all(/^\/api\//, (req, res) => {
    ran(req.method, req.originalUrl, req.auth !== undefined);
    res.setHeader(HANDLER_HEADER, '1');
    res.json({ handler: 'ran' });
  });
  app.use(
    (
      error: { status?: number },
      _req: import('express').Request,
      res: import('express').Response,
      next: import('express').NextFunction,
    ) => {
      if (res.headersSent) return next(error);
      res
        .status(error.status ?? 500)
        .type('text/plain')
        .send('error');
    },
  );
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function fastifyServer(config: HostileServerConfig, options: Options, ran: Ran) {
  const { default: Fastify } = await import('fastify');
  const { dpopAuthPlugin } = await import('@popkit/dpop-verifier/fastify');
  const app = Fastify({
    // warnings (a reply sent twice, for one) reach the parent through stderr
    logger: { level: 'warn', stream: process.stderr },
    ...(config.timeoutMs === undefined ? {} : { handlerTimeout: config.timeoutMs }),
  });
  app.get('/health', async () => 'ok');
  if (config.cors !== undefined) {
    const { default: fastifyCors } = await import('@fastify/cors');
    await app.register(fastifyCors, {
      origin:
        config.cors === 'deny'
          ? (_origin: string | undefined, cb: (e: Error | null, allow: boolean) => void) =>
              cb(null, false)
          : ALLOWED_ORIGIN,
      preflightContinue: config.cors === 'continue',
    });
  }
  await app.register(
    async (api) => {
      await api.register(dpopAuthPlugin, options);
      api.all('/*', async (request, reply) => {
        ran(request.method, request.url, request.auth !== null);
        reply.header(HANDLER_HEADER, '1');
        return { handler: 'ran' };
      });
    },
    { prefix: '/api' },
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

async function honoServer(config: HostileServerConfig, options: Options, ran: Ran) {
  const { Hono } = await import('hono');
  const { serve } = await import('@hono/node-server');
  const { dpopAuth } = await import('@popkit/dpop-verifier/hono');
  type Env = import('@popkit/dpop-verifier/hono').DPoPAuthEnv;
  const app = new Hono<Env>();
  app.get('/health', (c) => c.text('ok'));
  if (config.cors !== undefined) {
    const { cors } = await import('hono/cors');
    app.use('*', cors({ origin: config.cors === 'deny' ? () => null : ALLOWED_ORIGIN }) as never);
  }
  if (config.timeoutMs !== undefined) {
    const { timeout } = await import('hono/timeout');
    const { HTTPException } = await import('hono/http-exception');
    app.use(
      '/api/*',
      timeout(config.timeoutMs, () => new HTTPException(503, { message: 'request timed out' })),
    );
  }
  app.use('/api/*', dpopAuth(options));
  app.all('/api/*', (c) => {
    ran(c.req.method, new URL(c.req.url).pathname, c.get('auth') !== undefined);
    c.header(HANDLER_HEADER, '1');
    return c.json({ handler: 'ran' });
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((r) => server.once('listening', () => r()));
  return (server.address() as AddressInfo).port;
}

if (process.env.POPKIT_HOSTILE_CHILD === '1' && process.argv[2] !== undefined) {
  await child(JSON.parse(process.argv[2]) as HostileServerConfig);
}
