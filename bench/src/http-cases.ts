// Loopback HTTP load: requests/s and latency of the Express API with popkit, with a naive jose
// check, and with no auth (the ceiling). autocannon in this process, the server in a child.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, fork } from 'node:child_process';
import os from 'node:os';
import autocannon from 'autocannon';
import type { HttpMode, HttpWorkload } from './http-workload.ts';
import { HTTP_MODES, HTTP_NAMES, PUBLIC_URL, SERVER_SCRIPT } from './http-workload.ts';

export interface HttpResult {
  mode: HttpMode;
  name: string;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuMicrosPerRequest: number;
  /** CPU inside the middleware per request (raw verify and popkit, timed in the paired server). */
  authMicrosPerRequest?: number;
}

export async function httpCases(
  workload: HttpWorkload,
  seconds: number,
  connections = 16,
  cpu: { rate: number; seconds: number; rounds: number; warmSeconds: number } = {
    rate: 400,
    seconds: 4,
    rounds: 3,
    warmSeconds: 3,
  },
): Promise<HttpResult[]> {
  const { jwks, token } = workload;
  const modes = HTTP_MODES;
  type Mode = HttpMode;
  const start = async (mode: Mode | 'paired') => {
    const child = fork(SERVER_SCRIPT, [mode, JSON.stringify(jwks), PUBLIC_URL], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const { port } = await new Promise<{ port: number }>((resolve) =>
      child.once('message', (m) => resolve(m as { port: number })),
    );
    pin(child.pid!, SERVER_CPU);
    return { port, child };
  };
  const servers = new Map<Mode, { port: number; child: ChildProcess }>();
  for (const mode of modes) servers.set(mode, await start(mode));
  // One server with both the raw verify (/verify) and popkit (/popkit), requests alternating.
  const paired = await start('paired');
  pin(process.pid, LOAD_CPU);
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
  type Options = { duration: number; overallRate?: number };
  // `paths` are requested in turn by each connection; every proof is made for `proofPath` on a
  // server of `mode` (the raw verify ignores it).
  const fire = async (mode: Mode, port: number, paths: string[], options: Options) => {
    const proofPath = paths[paths.length - 1];
    const list: string[] = [];
    const count = Math.ceil(options.duration * (options.overallRate ?? 12_000) * 1.2);
    for (let i = 0; i < count; i++) list.push(await workload.proof(mode, port, proofPath));
    let next = 0;
    const setupRequest = (req: { headers?: Record<string, string> }) => {
      req.headers = { authorization: `DPoP ${token}`, dpop: list[next++ % list.length]! };
      return req;
    };
    return (await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections,
      ...options,
      requests: paths.map((path) => ({ method: 'GET', path, setupRequest })),
    } as never)) as autocannon.Result;
  };
  const load = (mode: Mode, options: Options) =>
    fire(mode, servers.get(mode)!.port, ['/api/orders'], options);
  // The paired server's load: each connection alternates /verify and /popkit requests.
  const pairedLoad = (options: Options) =>
    fire('popkit', paired.port, ['/verify/api/orders', '/popkit/api/orders'], options);
  // Warm-up, unmeasured: V8 optimises each server's hot path before any figure is taken.
  for (const mode of modes) await load(mode, { duration: cpu.warmSeconds });
  await pairedLoad({ duration: cpu.warmSeconds });
  // Server CPU per request at the same offered rate for every mode (at saturation the cheaper
  // server batches more work per event-loop turn, which would flatter it), rounds interleaved.
  // Whole-server rounds run without the middleware timer (a system call per request); the
  // figures around the middleware come from the paired server, where popkit and the raw verify
  // are timed at the same moments, under the same load and cache pressure.
  const cpuRounds = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  const authRounds = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  const pairedRatios: number[] = [];
  type CpuReply = {
    micros: number;
    requests: number;
    labels: Record<string, { micros: number; calls: number }>;
  };
  for (let r = 0; r < cpu.rounds; r++) {
    for (const mode of modes) {
      const { child } = servers.get(mode)!;
      await ask(child, 'cpu-start', 'cpu-started');
      await load(mode, { duration: cpu.seconds, overallRate: cpu.rate });
      const whole = await ask<CpuReply>(child, 'cpu-stop', 'cpu');
      cpuRounds.get(mode)!.push(whole.micros / Math.max(1, whole.requests));
    }
    await ask(paired.child, 'cpu-start-middleware', 'cpu-started');
    await pairedLoad({ duration: cpu.seconds, overallRate: cpu.rate });
    const { labels } = await ask<CpuReply>(paired.child, 'cpu-stop', 'cpu');
    const each = (label: string) => labels[label]!.micros / Math.max(1, labels[label]!.calls);
    authRounds.get('verify')!.push(each('verify'));
    authRounds.get('popkit')!.push(each('popkit'));
    pairedRatios.push(each('popkit') / each('verify'));
  }
  pairedRatios.sort((a, b) => a - b);
  lastPaired = {
    ratio: pairedRatios[Math.floor(pairedRatios.length / 2)]!,
    min: pairedRatios[0]!,
    max: pairedRatios[pairedRatios.length - 1]!,
  };
  const results: HttpResult[] = [];
  for (const mode of modes) {
    const result = await load(mode, { duration: seconds });
    const rounds = cpuRounds.get(mode)!.sort((a, b) => a - b);
    const auth = authRounds.get(mode)!.sort((a, b) => a - b);
    results.push({
      mode,
      name: HTTP_NAMES[mode],
      requestsPerSecond: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      non2xx: result.non2xx,
      cpuMicrosPerRequest: rounds[Math.floor(rounds.length / 2)]!,
      ...(auth.length > 0 ? { authMicrosPerRequest: auth[Math.floor(auth.length / 2)]! } : {}),
    });
  }
  for (const { child } of servers.values()) child.kill();
  paired.child.kill();
  pin(process.pid, `0-${os.cpus().length - 1}`);
  return results;
}

// The load generator and the servers each get a core of their own (when there are two), so
// neither's CPU time per request is inflated by the other's cache and scheduler interference.
const LOAD_CPU = '0';
const SERVER_CPU = '1';
let pinning: boolean | undefined;
function pin(pid: number, cpus: string): void {
  if (pinning === false || os.cpus().length < 2) return;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    pinning = true;
  } catch {
    pinning = false;
    process.stderr.write('bench: taskset unavailable; servers and load generator share cores\n');
  }
}

let lastPaired: { ratio: number; min: number; max: number } | undefined;
/**
 * popkit's CPU around the middleware / the raw verify's, in the paired server of the last run:
 * median of the per-round ratios, with their range.
 */
export function pairedMiddlewareRatio(): { ratio: number; min: number; max: number } | undefined {
  return lastPaired;
}

/** Whether the last HTTP run had the load generator and the servers on separate cores. */
export function httpPinned(): boolean {
  return pinning === true;
}
