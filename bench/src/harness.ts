// A small benchmark harness: calibrated batches, cases of a group interleaved round by round in
// one process, so ratios compare cases measured back to back on the same (noisy) machine.

export interface Case {
  name: string;
  /** Runs one operation; may return a promise (awaited: one operation in flight). */
  run: () => unknown;
  /** Prepares state before each round (e.g. fresh proofs within the iat window). */
  beforeRound?: () => Promise<void> | void;
}

export interface Measured {
  name: string;
  /** ops/s of each round. */
  rounds: number[];
}

const now = () => performance.now();

async function timeBatch(run: () => unknown, n: number): Promise<number> {
  const start = now();
  for (let i = 0; i < n; i++) {
    const r = run();
    if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') await r;
  }
  return now() - start;
}

/** ops/s of `run` over about `ms` milliseconds, after a short warm-up. */
export async function opsPerSecond(run: () => unknown, ms: number): Promise<number> {
  let batch = 1;
  // calibrate to batches of ~10 ms (and warm up)
  for (;;) {
    const t = await timeBatch(run, batch);
    if (t >= 10 || batch >= 1 << 20) break;
    batch *= t < 1 ? 8 : 2;
  }
  let ops = 0;
  let elapsed = 0;
  while (elapsed < ms) {
    elapsed += await timeBatch(run, batch);
    ops += batch;
  }
  return (ops / elapsed) * 1000;
}

/** Measures every case for `ms` per round, `rounds` times, interleaved. */
export async function measureGroup(cases: Case[], rounds: number, ms: number): Promise<Measured[]> {
  const out = cases.map((c) => ({ name: c.name, rounds: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      await cases[i]!.beforeRound?.();
      (globalThis as { gc?: () => void }).gc?.();
      out[i]!.rounds.push(await opsPerSecond(cases[i]!.run, ms));
    }
  }
  return out;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per-round ratio a/b of ops/s (a is x times as fast as b): median, min, max. */
export function ratio(a: Measured, b: Measured): { median: number; min: number; max: number } {
  const r = a.rounds.map((v, i) => v / b.rounds[i]!);
  return { median: median(r), min: Math.min(...r), max: Math.max(...r) };
}

export function fmtOps(v: number): string {
  return v >= 1e6
    ? `${(v / 1e6).toFixed(2)}M`
    : v >= 1e4
      ? `${Math.round(v / 1000)}k`
      : v >= 1000
        ? `${(v / 1000).toFixed(1)}k`
        : v.toFixed(0);
}

export function fmtRatio(r: { median: number; min: number; max: number }): string {
  return `${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)})`;
}
