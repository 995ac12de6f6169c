// Server work per request as machine instructions, counted by valgrind's callgrind inside each
// server process. CPU time per request on a shared 2-core VM moves by a third from run to run
// (the load generator, the hypervisor and the other server share the caches); an instruction
// count does not depend on what else the machine does, so the ratios the targets name are
// measured here. Each request is sent alone (one in flight, keep-alive), after a warm-up that
// lets V8 optimise; counting is switched on only for the measured requests
// (`callgrind_control`), so start-up and warm-up are not in the figure, and runs in windows
// whose median is reported.
//
// Caveats, all against popkit rather than for it: under valgrind the server runs ~40x slower,
// so clock-driven work (the replay store's sweep of its default 32 MiB table every 10 s,
// Express's Date header) lands on fewer requests than at real speed; and valgrind offers no
// AVX-512, so OpenSSL takes its AVX2 paths (the same ones for every mode).
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { HttpMode, HttpWorkload } from './http-workload.ts';
import { HTTP_NAMES, PUBLIC_URL, SERVER_SCRIPT } from './http-workload.ts';

export interface InstructionResult {
  mode: HttpMode;
  name: string;
  /**
   * Instructions the server process executed per request (all threads: GC, compiler, libuv),
   * in the median window.
   */
  instructionsPerRequest: number;
  /** The lowest and highest window. */
  min: number;
  max: number;
  requests: number;
}

/** Whether valgrind (callgrind and callgrind_control) can run here. */
export function hasCallgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function countOne(
  mode: HttpMode,
  workload: HttpWorkload,
  { warmup, requests, windows }: { warmup: number; requests: number; windows: number },
  dir: string,
): Promise<InstructionResult> {
  const out = path.join(dir, `callgrind.${mode}.out`);
  const child: ChildProcess = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--import',
      'tsx',
      SERVER_SCRIPT,
      mode,
      JSON.stringify(workload.jwks),
      PUBLIC_URL,
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const port = await Promise.race([
    new Promise<number>((resolve) =>
      child.once('message', (m) => resolve((m as { port: number }).port)),
    ),
    exited.then((code) => {
      throw new Error(`${mode} server under valgrind exited (${code}): ${stderr}`);
    }),
  ]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = async () => {
    const dpop = await workload.proof(mode, port);
    await new Promise<void>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port,
            path: '/api/orders',
            agent,
            headers: { authorization: `DPoP ${workload.token}`, dpop },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200
                ? resolve()
                : reject(new Error(`${mode}: HTTP ${res.statusCode}`)),
            );
          },
        )
        .on('error', reject);
    });
  };
  const control = (...args: string[]) =>
    execFileSync('callgrind_control', [...args, String(child.pid)], { stdio: 'ignore' });
  const perWindow = Math.ceil(requests / windows);
  try {
    for (let i = 0; i < warmup; i++) await one();
    control('--instr=on');
    // Counted in windows (zero, requests, dump): the median window is the steady per-request
    // work, and the spread shows what a GC cycle or a late optimisation adds.
    for (let w = 0; w < windows; w++) {
      control('--zero');
      for (let i = 0; i < perWindow; i++) await one();
      control('--dump');
    }
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await exited;
  }
  const counts: number[] = [];
  for (let w = 1; w <= windows; w++) {
    const totals = /^totals:\s+(\d+)/m.exec(readFileSync(`${out}.${w}`, 'utf8'));
    if (!totals) throw new Error(`${mode}: no callgrind totals in window ${w}`);
    counts.push(Number(totals[1]) / perWindow);
  }
  counts.sort((a, b) => a - b);
  return {
    mode,
    name: HTTP_NAMES[mode],
    instructionsPerRequest: counts[Math.floor(counts.length / 2)]!,
    min: counts[0]!,
    max: counts[counts.length - 1]!,
    requests: perWindow * windows,
  };
}

/**
 * Instructions per request of each server mode, all modes counted concurrently (the counts do
 * not depend on it). About 85 s of CPU per mode for 3,000 + 1,000 requests under valgrind.
 */
export async function httpInstructionCases(
  workload: HttpWorkload,
  modes: readonly HttpMode[],
  options: { warmup: number; requests: number; windows: number },
): Promise<InstructionResult[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'popkit-callgrind-'));
  try {
    return await Promise.all(modes.map((mode) => countOne(mode, workload, options, dir)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
