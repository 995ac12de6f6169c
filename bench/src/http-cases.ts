// Loopback HTTP load: requests/s and latency of the Express API with popkit, with a naive jose
// check, and with no auth (the ceiling). autocannon in this process, the server in a child.
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import autocannon from 'autocannon';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';

export interface HttpResult {
  name: string;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuMicrosPerRequest: number;
  /** CPU inside the auth middleware per request (popkit only; its path does not wait on I/O). */
  authMicrosPerRequest?: number;
}

export async function httpCases(
  seconds: number,
  connections = 16,
  cpu: { rate: number; seconds: number; rounds: number } = { rate: 400, seconds: 4, rounds: 3 },
): Promise<HttpResult[]> {
  const as = await joseKeyPair('ES256');
  const jwks = { keys: [{ ...(await exportJWK(as.publicKey)), kid: 'k', alg: 'ES256' }] };
  const client = await generateKeyPair('ES256');
  const token = await new SignJWT({ cnf: { jkt: await thumbprint(client) } })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
    .setIssuer('https://as')
    .setAudience('https://rs')
    .setExpirationTime('1h')
    .sign(as.privateKey);
  const publicUrl = 'http://127.0.0.1';
  const modes = ['none', 'verify', 'popkit', 'peer', 'jose'] as const;
  type Mode = (typeof modes)[number];
  const servers = new Map<Mode, { port: number; child: ChildProcess }>();
  for (const mode of modes) {
    const child = fork(
      fileURLToPath(new URL('./http-server.ts', import.meta.url)),
      [mode, JSON.stringify(jwks), publicUrl],
      { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    const { port } = await new Promise<{ port: number }>((resolve) =>
      child.once('message', (m) => resolve(m as { port: number })),
    );
    servers.set(mode, { port, child });
  }
  const ask = <T>(child: ChildProcess, cmd: string, reply: string) =>
    new Promise<T>((resolve) => {
      const on = (m: { cmd: string }) => {
        if (m.cmd !== reply) return;
        child.off('message', on);
        resolve(m as T);
      };
      child.on('message', on);
      child.send({ cmd });
    });
  // One fresh proof per request (unique jti; htu as the server sees itself: the peer derives it
  // from the Host header, port included), made right before each run so none is stale.
  // Express alone receives the same requests (token and proof headers, unverified), so its CPU
  // per request is the baseline for what the auth layers add, not for smaller requests.
  const freshProofs = async (mode: Mode, count: number): Promise<string[]> => {
    const htu = mode === 'peer' ? `http://127.0.0.1:${servers.get(mode)!.port}` : publicUrl;
    const list: string[] = [];
    for (let i = 0; i < count; i++)
      list.push(
        await createProof(client, { method: 'GET', url: `${htu}/api/orders`, accessToken: token }),
      );
    return list;
  };
  const load = async (mode: Mode, options: { duration: number; overallRate?: number }) => {
    const list = await freshProofs(
      mode,
      Math.ceil(options.duration * (options.overallRate ?? 12_000) * 1.2),
    );
    let next = 0;
    return (await autocannon({
      url: `http://127.0.0.1:${servers.get(mode)!.port}/api/orders`,
      connections,
      ...options,
      requests: [
        {
          setupRequest: (req: { headers?: Record<string, string> }) => {
            req.headers = { authorization: `DPoP ${token}`, dpop: list[next++ % list.length]! };
            return req;
          },
        },
      ],
    } as never)) as autocannon.Result;
  };
  // Server CPU per request at the same offered rate for every mode (at saturation the cheaper
  // server batches more work per event-loop turn, which would flatter it), rounds interleaved.
  const cpuRounds = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  const authRounds = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  for (let round = 0; round < cpu.rounds; round++) {
    for (const mode of modes) {
      const { child } = servers.get(mode)!;
      await ask(child, 'cpu-start', 'cpu-started');
      await load(mode, { duration: cpu.seconds, overallRate: cpu.rate });
      const used = await ask<{
        micros: number;
        requests: number;
        authMicros: number;
        authCalls: number;
      }>(child, 'cpu-stop', 'cpu');
      cpuRounds.get(mode)!.push(used.micros / Math.max(1, used.requests));
      if (used.authCalls > 0) authRounds.get(mode)!.push(used.authMicros / used.authCalls);
    }
  }
  const results: HttpResult[] = [];
  for (const mode of modes) {
    const result = await load(mode, { duration: seconds });
    const rounds = cpuRounds.get(mode)!.sort((a, b) => a - b);
    const auth = authRounds.get(mode)!.sort((a, b) => a - b);
    results.push({
      name:
        mode === 'none'
          ? '[ceiling] Express, no auth (same request headers)'
          : mode === 'verify'
            ? '[limit] Express + one raw node:crypto ES256 verify'
            : mode === 'popkit'
              ? 'Express + popkit dpopAuth (JWT + DPoP + replay)'
              : mode === 'peer'
                ? 'Express + express-oauth2-jwt-bearer (JWT + DPoP, no replay)'
                : 'Express + naive jose DPoP check (no replay)',
      requestsPerSecond: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      non2xx: result.non2xx,
      cpuMicrosPerRequest: rounds[Math.floor(rounds.length / 2)]!,
      ...(auth.length > 0 ? { authMicrosPerRequest: auth[Math.floor(auth.length / 2)]! } : {}),
    });
  }
  for (const { child } of servers.values()) child.kill();
  return results;
}
