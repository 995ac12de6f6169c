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
  /**
   * Server CPU time (user + system, all threads) per request, in microseconds, in the shared
   * server at the fixed rate, one prefix at a time: the median block.
   */
  cpuMicrosPerRequest: number;
}

/** A ratio, with the interquartile range of the same ratio taken round by round. */
export interface Spread {
  ratio: number;
  low: number;
  high: number;
}

/** The CPU-time figures of the last run (see `httpCases`). */
export interface CpuRatios {
  /**
   * (popkit - Express alone) / (raw verify - Express alone), per request, from the windows:
   * the ratio of the layers' median rounds, with the interquartile range of per-round ratios.
   */
  added: Spread;
  /** The two differences of `added`, in microseconds per request. */
  addedMicros: { popkit: number; verify: number };
  /** peer / popkit whole-process CPU per request (requests per CPU-second), from the blocks. */
  throughput: Spread;
  rounds: number;
}

const median = (values: readonly number[]): number => quantile(values, 0.5);
/** Linear-interpolated quantile. */
const quantile = (values: readonly number[], q: number): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  return sorted[lo]! + (sorted[Math.ceil(at)]! - sorted[lo]!) * (at - lo);
};
const spread = (ratio: number, perRound: readonly number[]): Spread => ({
  ratio,
  low: quantile(perRound, 0.25),
  high: quantile(perRound, 0.75),
});

export async function httpCases(
  workload: HttpWorkload,
  seconds: number,
  connections = 16,
  cpu: {
    rate: number;
    seconds: number;
    blockSeconds: number;
    rounds: number;
    warmSeconds: number;
    /**
     * Full-speed warm-up of the interleaved mix before the rounds, to a steady state: JIT tiers
     * settle, and the replay store's table (3.7k pages of 4 KiB at the default budget, touched
     * at random by inserts) is paged in. A first touch is a page fault, about 10 us on this VM,
     * which a young server pays on most of its first few thousand proofs and a running one
     * never again.
     */
    steadySeconds: number;
  } = { rate: 400, seconds: 4, blockSeconds: 2, rounds: 8, warmSeconds: 3, steadySeconds: 15 },
): Promise<HttpResult[]> {
  const { jwks, token } = workload;
  const modes = HTTP_MODES;
  type Mode = HttpMode;
  const start = async (mode: Mode | 'shared') => {
    const child: ChildProcess = fork(SERVER_SCRIPT, [mode, JSON.stringify(jwks), PUBLIC_URL], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const { port } = await new Promise<{ port: number }>((resolve) =>
      child.once('message', (m) => resolve(m as { port: number })),
    );
    pin(child.pid!, SERVER_CPU);
    // no server outlives the bench, even when it fails
    const kill = () => child.kill();
    process.once('exit', kill);
    child.once('exit', () => process.off('exit', kill));
    return { port, child };
  };
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
  // Each connection requests `targets` in turn; each target's proofs are made for its path on a
  // server of its mode (the raw verify and Express alone ignore them).
  type Target = { mode: Mode; path: string };
  const fire = async (port: number, targets: readonly Target[], options: Options) => {
    // (autocannon runs whole seconds, and a rate-limited run may overshoot its rate; a proof
    // sent twice would be refused as a replay)
    const count =
      Math.ceil(
        (Math.ceil(options.duration) * (options.overallRate ?? 12_000) * 1.5) / targets.length,
      ) +
      4 * connections;
    let refused: string | undefined;
    const onResponse = (
      status: number,
      _body: string,
      _ctx: unknown,
      headers: Record<string, string>,
    ) => {
      if (status >= 300) refused ??= `${status} ${headers['WWW-Authenticate'] ?? ''}`;
    };
    const requests = [];
    for (const { mode, path } of targets) {
      const list: string[] = [];
      for (let i = 0; i < count; i++) list.push(await workload.proof(mode, port, path));
      let next = 0;
      const setupRequest = (req: { headers?: Record<string, string> }) => {
        req.headers = { authorization: `DPoP ${token}`, dpop: list[next++ % list.length]! };
        return req;
      };
      requests.push({ method: 'GET', path, setupRequest, onResponse });
    }
    const result = (await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections,
      ...options,
      requests,
    } as never)) as autocannon.Result;
    if (result.non2xx > 0 || result.errors > 0) {
      throw new Error(
        `bench: ${targets.map((t) => t.path).join(', ')} answered ${result.non2xx} non-2xx (first: ${refused}), ${result.errors} errors`,
      );
    }
    return result;
  };

  // CPU time per request (the measure), every layer in ONE server process: Express
  // alone under /none, the raw verify under /verify, popkit, the peer and jose under theirs, all
  // at a fixed offered rate (at saturation the cheaper layer would batch more per event-loop
  // turn, which flatters it). Two kinds of round alternate:
  // - windows: each connection sends /none, /verify and /popkit in turn and the server times
  //   each request from its first middleware to `finish` (http-server.ts). The three are
  //   measured at the same moments, under the same JIT, heap and machine state, so host noise
  //   lands on all alike and cancels in their differences. Only layers that finish a request
  //   within one turn take part: the peer and jose verify with WebCrypto on libuv's threads,
  //   whose CPU would land in whatever window is open (the timer reads the whole process).
  // - blocks: requests to one prefix at a time, the whole process's CPU per request, for the
  //   peer comparison and the table.
  const shared = await start('shared');
  const prefixed = (mode: Mode): Target => ({ mode, path: `/${mode}/api/orders` });
  const windowed = (['none', 'verify', 'popkit'] as const).map(prefixed);
  for (const mode of modes)
    await fire(shared.port, [prefixed(mode)], { duration: cpu.warmSeconds });
  await fire(shared.port, windowed, { duration: cpu.steadySeconds });
  type CpuReply = {
    micros: number;
    requests: number;
    windows: Record<string, { micros: number; calls: number }>;
  };
  const inWindow = new Map<Mode, number[]>(windowed.map(({ mode }) => [mode, []]));
  const perBlock = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  const ratios = { added: [] as number[], throughput: [] as number[] };
  for (let r = 0; r < cpu.rounds; r++) {
    await ask(shared.child, 'cpu-start-request', 'cpu-started');
    await fire(shared.port, windowed, { duration: cpu.seconds, overallRate: cpu.rate });
    const { windows } = await ask<CpuReply>(shared.child, 'cpu-stop', 'cpu');
    const w = (mode: Mode) => windows[mode]!.micros / windows[mode]!.calls;
    for (const { mode } of windowed) inWindow.get(mode)!.push(w(mode));
    ratios.added.push((w('popkit') - w('none')) / (w('verify') - w('none')));
    const block = new Map<Mode, number>();
    for (let k = 0; k < modes.length; k++) {
      const mode = modes[(r + k) % modes.length]!;
      await ask(shared.child, 'cpu-start', 'cpu-started');
      await fire(shared.port, [prefixed(mode)], {
        duration: cpu.blockSeconds,
        overallRate: cpu.rate,
      });
      const { micros, requests } = await ask<CpuReply>(shared.child, 'cpu-stop', 'cpu');
      block.set(mode, micros / requests);
      perBlock.get(mode)!.push(micros / requests);
    }
    ratios.throughput.push(block.get('peer')! / block.get('popkit')!);
  }
  shared.child.kill();
  const [none, verify, popkit] = (['none', 'verify', 'popkit'] as const).map((m) =>
    median(inWindow.get(m)!),
  );
  const blockOf = (mode: Mode) => median(perBlock.get(mode)!);
  lastRatios = {
    added: spread((popkit! - none!) / (verify! - none!), ratios.added),
    addedMicros: { popkit: popkit! - none!, verify: verify! - none! },
    throughput: spread(blockOf('peer') / blockOf('popkit'), ratios.throughput),
    rounds: cpu.rounds,
  };

  // Saturated requests/s and latency: a server per layer, one at a time.
  const results: HttpResult[] = [];
  for (const mode of modes) {
    const server = await start(mode);
    const target = [{ mode, path: '/api/orders' }];
    await fire(server.port, target, { duration: cpu.warmSeconds });
    const result = await fire(server.port, target, { duration: seconds });
    server.child.kill();
    results.push({
      mode,
      name: HTTP_NAMES[mode],
      requestsPerSecond: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      non2xx: result.non2xx,
      cpuMicrosPerRequest: blockOf(mode),
    });
  }
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

let lastRatios: CpuRatios | undefined;
/** The CPU-time ratios of the last run (see {@link CpuRatios}). */
export function cpuRatios(): CpuRatios | undefined {
  return lastRatios;
}

/** Whether the last HTTP run had the load generator and the servers on separate cores. */
export function httpPinned(): boolean {
  return pinning === true;
}
