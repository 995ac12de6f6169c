// A small benchmark harness: calibrated batches, cases of a group interleaved round by round in
// one process (or a case and its limit batch by batch: measurePair), so ratios compare cases
// measured back to back on the same (noisy) machine.

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

/**
 * A case and its limit measured against each other in alternating batches of about 3 ms (A B B
 * A) for `ms` per round. Where the machine's speed drifts between one slice of time and the
 * next (a VM's neighbours, the clock frequency), {@link measureGroup}'s slices, a case after
 * the other, put that drift into the ratio (Bun's raw `crypto.subtle.sign` varied 10k-17k/s
 * between rounds); within a round of batches both see the same machine, while each case still
 * runs a batch of its own (its garbage and caches stay its own, unlike call-by-call alternation).
 */
export async function measurePair(
  a: Case,
  b: Case,
  rounds: number,
  ms: number,
): Promise<[Measured, Measured]> {
  await a.beforeRound?.();
  await b.beforeRound?.();
  let batch = 1;
  while (Math.min(await timeBatch(a.run, batch), await timeBatch(b.run, batch)) < 3) batch *= 2;
  const ma: Measured = { name: a.name, rounds: [] };
  const mb: Measured = { name: b.name, rounds: [] };
  for (let r = 0; r < rounds; r++) {
    await a.beforeRound?.();
    await b.beforeRound?.();
    (globalThis as { gc?: () => void }).gc?.();
    let ta = 0;
    let tb = 0;
    let ops = 0;
    while (ta + tb < 2 * ms) {
      ta += await timeBatch(a.run, batch);
      tb += await timeBatch(b.run, batch);
      tb += await timeBatch(b.run, batch);
      ta += await timeBatch(a.run, batch);
      ops += 2 * batch;
    }
    ma.rounds.push((ops / ta) * 1000);
    mb.rounds.push((ops / tb) * 1000);
  }
  return [ma, mb];
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
